import numpy as np
import pytest
import torch

from declib import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.delenv("DECLIB_FAST", raising=False)
    assert config.profile_name() == "full" and config.profile().n_samples == 70_000
    monkeypatch.setenv("DECLIB_FAST", "1")
    assert config.profile_name() == "fast" and config.profile().n_samples < 70_000
    monkeypatch.setenv("DECLIB_FAST", "0")
    assert config.profile_name() == "full"
    monkeypatch.setenv("DECLIB_FAST", "maybe")
    with pytest.raises(ValueError, match="DECLIB_FAST"):
        config.profile_name()


def test_profile_overrides_and_unknown_name():
    assert config.profile("fast", mlp_epochs=1).mlp_epochs == 1
    with pytest.raises(ValueError, match="profile must be one of"):
        config.profile("medium")
    with pytest.raises(TypeError):
        config.profile("fast", not_a_field=1)


def test_profiles_have_the_same_fields_and_fast_is_smaller():
    full, fast = config.PROFILES["full"], config.PROFILES["fast"]
    assert fast.n_samples <= full.n_samples and fast.mlp_epochs <= full.mlp_epochs


def test_seed_everything_repeats_draws():
    config.seed_everything(7)
    a = (np.random.rand(), torch.rand(3))
    config.seed_everything(7)
    b = (np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)


def test_devices():
    dev = config.default_device()
    assert dev.type in ("cuda", "mps", "cpu")
    assert config.resolve_device("cpu") == torch.device("cpu")
    assert config.resolve_device("auto") == dev
    with pytest.raises(ValueError, match="device must be"):
        config.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            config.resolve_device("cuda")
    assert "profile:" in config.describe_runtime()
