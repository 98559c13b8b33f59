import numpy as np
import pytest
import torch

from declib import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.delenv("DECLIB_FAST", raising=False)
    monkeypatch.delenv("DECLIB_PROFILE", raising=False)
    auto = "full" if torch.cuda.is_available() else "cpu"
    assert config.profile_name() == auto and config.profile().n_samples == 70_000
    monkeypatch.setenv("DECLIB_FAST", "1")
    assert config.profile_name() == "fast" and config.profile().n_samples < 70_000
    monkeypatch.setenv("DECLIB_FAST", "0")
    assert config.profile_name() == auto
    monkeypatch.setenv("DECLIB_PROFILE", "full")
    assert config.profile_name() == "full"
    monkeypatch.setenv("DECLIB_PROFILE", "medium")
    with pytest.raises(ValueError, match="DECLIB_PROFILE"):
        config.profile_name()
    monkeypatch.delenv("DECLIB_PROFILE")
    monkeypatch.setenv("DECLIB_FAST", "maybe")
    with pytest.raises(ValueError, match="DECLIB_FAST"):
        config.profile_name()


def test_auto_is_full_on_cuda_and_cpu_otherwise(monkeypatch):
    monkeypatch.delenv("DECLIB_FAST", raising=False)
    monkeypatch.delenv("DECLIB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.profile_name() == "full" and config.profile("auto").sae_schedule == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.profile_name() == "cpu" and config.profile("auto").sae_schedule == "cpu"


def test_use_profile_switches_inside_the_process(monkeypatch):
    monkeypatch.setenv("DECLIB_FAST", "1")
    try:
        assert config.use_profile("cpu").name == "cpu" and config.profile_name() == "cpu"
        assert config.profile().sae_schedule == "cpu"
        with pytest.raises(ValueError, match="profile must be one of"):
            config.use_profile("medium")
        assert config.profile_name() == "cpu"  # a refused name changes nothing
    finally:
        assert config.use_profile("auto").name == "fast"  # back to the environment's choice


def test_precision_falls_back_to_float32_where_bf16_is_not_native(monkeypatch):
    assert config.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(config, "bf16_supported", lambda device=None: False)
    with pytest.warns(UserWarning, match="float32 instead"):
        assert config.resolve_precision("bf16", "cpu") == "fp32"
    assert config.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(config, "bf16_supported", lambda device=None: True)
    assert config.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        config.resolve_precision("fp16", "cpu")


def test_describe_runtime_states_the_cost_of_each_notebook(monkeypatch):
    monkeypatch.setenv("DECLIB_FAST", "1")
    text = config.describe_runtime("05")
    assert "profile: fast" in text and "precision" in text
    assert f"about {config.NOTEBOOK_MINUTES['05']['fast']:g} min" in text
    assert set(config.NOTEBOOK_MINUTES) == {f"{i:02d}" for i in range(7)}
    monkeypatch.setenv("DECLIB_PROFILE", "full")
    assert "not measured" in config.describe_runtime("05")
    assert all(set(v) == set(config.PROFILES) for v in config.NOTEBOOK_MINUTES.values())


def test_profile_overrides_and_unknown_name():
    assert config.profile("fast", mlp_epochs=1).mlp_epochs == 1
    with pytest.raises(ValueError, match="profile must be one of"):
        config.profile("medium")
    with pytest.raises(TypeError):
        config.profile("fast", not_a_field=1)


def test_profiles_sizes_and_schedules():
    full, cpu, fast = (config.PROFILES[k] for k in ("full", "cpu", "fast"))
    assert full.n_samples == cpu.n_samples == 70_000 and fast.n_samples < 70_000
    from declib.stacked import SCHEDULES

    assert all(p.sae_schedule in SCHEDULES and p.name == k for k, p in config.PROFILES.items())
    # the CPU profile differs from full in exactly these fields: the deep network's schedule, DEC's seeds,
    # precision and threshold; notebooks 00-03 run the same in both
    differ = {f for f in full.__dataclass_fields__ if getattr(full, f) != getattr(cpu, f)}
    assert differ == {"name", "sae_schedule", "sae_seeds", "dec_seeds", "dec_precision", "min_dec_acc"}
    # fast is a smaller run of the same thing: every size and schedule length at most full's
    sizes = ["n_samples", "kmeans_n_init", "elbow_n_samples", "init_compare_seeds", "mlp_train_size", "mlp_epochs",
             "ae_epochs", "ae_sweep_epochs", "sae_seeds", "dec_seeds", "dec_max_iter"]
    assert all(getattr(fast, f) <= getattr(full, f) for f in sizes)
    assert set(fast.elbow_ks) <= set(full.elbow_ks) and set(fast.ae_bottlenecks) <= set(full.ae_bottlenecks)
    assert SCHEDULES[fast.sae_schedule].finetune_iters < SCHEDULES[cpu.sae_schedule].finetune_iters


def test_seed_everything_repeats_draws():
    config.seed_everything(7)
    a = (np.random.rand(), torch.rand(3))
    config.seed_everything(7)
    b = (np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)


def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    mps = torch.backends.mps
    for cuda_ok, mps_ok, expected in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda ok=cuda_ok: ok)
        monkeypatch.setattr(mps, "is_available", lambda ok=mps_ok: ok)
        assert config.default_device().type == expected
        assert config.resolve_device(None).type == config.resolve_device("auto").type == expected


def test_resolve_device_names_and_errors():
    assert config.resolve_device("cpu") == config.resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        config.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            config.resolve_device("cuda")
    assert "profile:" in config.describe_runtime()
