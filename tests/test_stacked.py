import copy
import json

import numpy as np
import pytest
import torch

from declib import cache
from declib.stacked import (SCHEDULES, Schedule, StackedAutoencoder, fold_input_scale, pretrain_layerwise,
                            pretrained_autoencoder)

TINY = Schedule(name="tiny", optimizer="adam", lr=1e-2, batch_size=32, layer_iters=6, finetune_iters=12,
                lr_decay_every=None)
DIMS = (20, 12, 8, 3)


@pytest.fixture
def data():
    return np.random.default_rng(0).uniform(size=(200, 20)).astype(np.float32)


def test_dec_activations_and_shared_layer_weights():
    sae = StackedAutoencoder()
    assert sae.dims == [784, 500, 500, 2000, 10]
    assert isinstance(sae.encoder[-1], torch.nn.Linear) and isinstance(sae.decoder[-1], torch.nn.Linear)
    assert sum(isinstance(m, torch.nn.ReLU) for m in sae.encoder) == 3
    enc, dec = sae.linears()
    first, last = sae.layer_autoencoder(0, 0.2), sae.layer_autoencoder(3, 0.2)
    assert first[1] is enc[0] and first[4] is dec[0] and dec[0].out_features == 784
    assert isinstance(first[5], torch.nn.Identity) and isinstance(first[2], torch.nn.ReLU)  # linear reconstruction
    assert isinstance(last[2], torch.nn.Identity) and isinstance(last[5], torch.nn.ReLU)  # linear embedding
    with pytest.raises(ValueError, match="l: expected a layer pair"):
        sae.layer_autoencoder(4, 0.2)


def test_layerwise_pretraining_trains_every_pair_in_place(data):
    sae = StackedAutoencoder(DIMS, seed=0)
    before = [p.detach().clone() for p in sae.parameters()]
    hist = pretrain_layerwise(sae, data, TINY, device="cpu", progress=False)
    assert len(hist) == 3
    assert all(not torch.equal(a, b) for a, b in zip(before, sae.parameters()))


def test_schedules_are_data():
    paper = SCHEDULES["paper"]
    assert (paper.batch_size, paper.layer_iters, paper.finetune_iters, paper.lr_decay_every,
            paper.dropout, paper.init_std, paper.optimizer) == (256, 50_000, 100_000, 20_000, 0.2, 0.01, "sgd")
    # Caffe's Euclidean loss is ½·mean squared error: its lr 0.1 is 0.05 on ours; grey levels × 0.02
    assert paper.lr == pytest.approx(0.1 / 2) and paper.input_scale == pytest.approx(255 * 0.02)
    assert paper.input_dropout == 0.0


def test_cache_keys_of_existing_schedules_did_not_change(data):
    """Fields added later with a default leave the key of a schedule that does not use them as it was, so weights
    already in users' caches stay valid (keys computed before input_scale and input_dropout existed)."""
    from dataclasses import replace

    def key(schedule):
        return cache.make_key(kind="stacked-autoencoder", dims=list(DIMS), schedule=schedule.key_fields(), seed=1,
                              layerwise=True, data=cache.data_fingerprint(data))

    assert key(SCHEDULES["full"]) == "981f5a2322a66310"
    full = SCHEDULES["full"]
    changed = [replace(full, input_scale=2.0), replace(full, precision="bf16"), replace(full, lr_schedule="onecycle"),
               replace(full, augment=(2, 0.0)), replace(full, noise=("masking", 0.2))]
    assert len({key(s) for s in changed} | {key(full)}) == len(changed) + 1  # every field in use names new weights


def test_first_pair_can_leave_the_pixels_uncorrupted():
    sae = StackedAutoencoder(DIMS, seed=0)
    first = sae.layer_autoencoder(0, 0.2, input_dropout=0.0)
    assert first[0].p == 0.0 and first[3].p == 0.2
    assert sae.layer_autoencoder(1, 0.2)[0].p == 0.2


def test_folding_the_input_scale_keeps_the_embedding_and_rescales_the_output():
    torch.manual_seed(0)
    x = torch.rand(50, DIMS[0])
    trained = StackedAutoencoder(DIMS, seed=3)
    folded = fold_input_scale(copy.deepcopy(trained), 5.1)
    with torch.no_grad():
        assert torch.allclose(folded.encode(x), trained.encode(5.1 * x), rtol=1e-5, atol=1e-5)
        assert torch.allclose(folded(x), trained(5.1 * x) / 5.1, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="scale: expected a finite number in \\(0, inf\\)"):
        fold_input_scale(trained, 0.0)


def test_training_on_scaled_pixels_returns_a_network_on_pixels(data):
    from dataclasses import replace

    from declib.autoencoder import reconstruction_mse

    scaled = replace(TINY, name="tiny-scaled", input_scale=4.0, input_dropout=0.0)
    model, info = pretrained_autoencoder(data, scaled, seed=0, dims=DIMS, device="cpu", progress=False,
                                         use_cache=False)
    # the history is in training units (pixels × 4, so squared errors × 16); the returned network is on pixels
    trained_units = info["finetune_history"]["loss"][-1]
    assert 0.5 < reconstruction_mse(model, data) * 16 / trained_units < 2.0


def test_cache_reuses_weights_and_detects_corruption(data, tmp_path):
    m1, info1 = pretrained_autoencoder(data, TINY, seed=1, dims=DIMS, device="cpu", progress=False)
    assert not info1["from_cache"]
    m2, info2 = pretrained_autoencoder(data, TINY, seed=1, dims=DIMS, device="cpu", progress=False)
    assert info2["from_cache"]
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    # another seed or other data → another key, retrained
    _, info3 = pretrained_autoencoder(data[:150], TINY, seed=1, dims=DIMS, device="cpu", progress=False)
    assert not info3["from_cache"] and info3["key"] != info1["key"]
    # flip one byte in the middle of the file: detected, removed, retrained
    path = info1["path"]
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(path, "wb").write(bytes(raw))
    with pytest.warns(cache.CacheCorruptWarning, match="checksum mismatch"):
        m4, info4 = pretrained_autoencoder(data, TINY, seed=1, dims=DIMS, device="cpu", progress=False)
    assert not info4["from_cache"]
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m4.parameters()))  # same seed, same weights


def test_truncated_cache_file_is_detected(tmp_path):
    path = tmp_path / "w.pt"
    cache.save_checkpoint(path, {"key": "k", "x": torch.ones(100)})
    assert cache.load_checkpoint(path, "k")["x"].sum() == 100
    assert cache.load_checkpoint(path, "other") is None  # stale key: not loaded
    path.write_bytes(path.read_bytes()[:-10])
    damaged = path.read_bytes()
    with pytest.warns(cache.CacheCorruptWarning, match="moved aside"):
        assert cache.load_checkpoint(path, "k") is None
    assert not path.exists()  # out of the cache's way ...
    assert (tmp_path / "w.pt.corrupt").read_bytes() == damaged  # ... but not deleted
    assert not list(tmp_path.glob("*.part"))


def test_interrupted_finetuning_resumes_to_the_same_weights(data, monkeypatch):
    full, _ = pretrained_autoencoder(data, TINY, seed=2, dims=DIMS, device="cpu", progress=False, use_cache=False)

    import declib.stacked as stacked

    real_finetune = stacked.finetune
    calls = {"epochs": 0}

    def interrupted(*args, on_epoch_end=None, **kwargs):
        def hook(state):
            on_epoch_end(state)
            calls["epochs"] += 1
            if calls["epochs"] == 1:
                raise KeyboardInterrupt

        return real_finetune(*args, on_epoch_end=hook, **kwargs)

    monkeypatch.setattr(stacked, "finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained_autoencoder(data, TINY, seed=2, dims=DIMS, device="cpu", progress=False, checkpoint_seconds=0)
    monkeypatch.setattr(stacked, "finetune", real_finetune)
    resumed, info = pretrained_autoencoder(data, TINY, seed=2, dims=DIMS, device="cpu", progress=False)
    assert not info["from_cache"]
    for p, q in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)


def test_interrupted_layerwise_stage_resumes_at_the_next_layer(data, monkeypatch):
    """Stopped after layer pair 1 of 3: the rerun starts at pair 2 (pair 1 is not trained again) and ends with the
    weights of an uninterrupted run."""
    full, full_info = pretrained_autoencoder(data, TINY, seed=3, dims=DIMS, device="cpu", progress=False,
                                             use_cache=False)
    import declib.stacked as stacked

    real = stacked.pretrain_layerwise
    starts = []

    def interrupted(model, X, schedule, device, seed, progress, cuda_graph, start_layer, on_layer_end):
        def hook(l, h):
            on_layer_end(l, h)
            if l == 0:
                raise KeyboardInterrupt

        return real(model, X, schedule, device, seed, progress, cuda_graph, start_layer, hook)

    def spy(model, X, schedule, device, seed, progress, cuda_graph, start_layer, on_layer_end):
        starts.append(start_layer)
        return real(model, X, schedule, device, seed, progress, cuda_graph, start_layer, on_layer_end)

    monkeypatch.setattr(stacked, "pretrain_layerwise", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrained_autoencoder(data, TINY, seed=3, dims=DIMS, device="cpu", progress=False)
    monkeypatch.setattr(stacked, "pretrain_layerwise", spy)
    resumed, info = pretrained_autoencoder(data, TINY, seed=3, dims=DIMS, device="cpu", progress=False)
    assert starts == [1] and not info["from_cache"]
    assert len(info["layer_histories"]) == len(full_info["layer_histories"]) == 3
    for p, q in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q)


def test_cpu_levers_each_change_one_choice_of_the_start():
    from dataclasses import asdict

    from declib.stacked import cpu_levers

    levers = cpu_levers()
    start = levers["start: batch 1024, peak lr 2e-3"]
    assert levers["batch 256, peak lr 1e-3 (the cpu schedule)"] is SCHEDULES["cpu"]
    keys = set()
    for name, schedule in levers.items():
        changed = {f for f, v in asdict(schedule).items() if v != getattr(start, f)} - {"name"}
        keys.add(json.dumps(schedule.key_fields(), sort_keys=True, default=str))
        if schedule is not SCHEDULES["cpu"]:  # one choice each (an epoch count changes the steps; const, the rate too)
            assert len(changed) <= 2, (name, changed)
    assert len(keys) == len(levers)  # every variant trains its own network
    assert {f for f, v in asdict(SCHEDULES["cpu"]).items() if v != getattr(start, f)} == {
        "batch_size", "lr", "layer_iters", "finetune_iters"}
