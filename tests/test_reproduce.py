"""The main job, ``python -m declib reproduce``, in the fast profile (as CI runs it)."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from declib import config
from declib.pipeline import STAGES
from declib.stacked import Schedule

TINY = Schedule(name="tiny", optimizer="adam", lr=1e-3, batch_size=64, layer_iters=20, finetune_iters=40,
                lr_decay_every=None)


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "declib", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def fast_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    t = time.perf_counter()
    proc = run("reproduce", "--profile", "fast", "--seeds", "1", "--out", str(out), "--no-progress", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), proc.stdout, time.perf_counter() - t


def test_fast_profile_meets_its_thresholds(fast_results):
    out, result, stdout, seconds = fast_results
    P = config.profile("fast")
    s = result["summary"]
    assert list(s) == STAGES
    assert s["k-means on pixels"]["acc"]["mean"] >= P.min_kmeans_pixel_acc
    assert s["AE 784-10-784 + k-means"]["acc"]["mean"] >= P.min_ae_codes_acc
    assert s["deep AE + k-means"]["acc"]["mean"] >= P.min_sae_kmeans_acc
    assert s["DEC"]["acc"]["mean"] >= P.min_dec_acc
    assert s["DEC"]["acc"]["mean"] > s["deep AE + k-means"]["acc"]["mean"], "DEC must improve on its k-means start"
    assert s["deep AE + k-means"]["acc"]["mean"] >= s["k-means on pixels"]["acc"]["mean"] + 0.15, \
        "the deep embedding must cluster far better than the pixels"
    assert result["settings"]["n_samples"] == P.n_samples and result["versions"]["torch"]
    assert (out / "confusion_dec.png").stat().st_size > 0 and (out / "embedding_dec.png").stat().st_size > 0
    assert "| DEC |" in stdout and "| DEC-DA |" in stdout
    for stage in STAGES[2:]:  # the merged-digit count is read off each seed's clusters
        runs = result["per_seed"][stage]
        assert all(isinstance(r["merged"], list) for r in runs)
        assert result["collapsed_seeds"][stage] == sum(bool(r["merged"]) for r in runs)
        assert "labels" not in runs[0]  # labels stay in progress.json, out of results.json
    assert "two digits merged" in stdout
    # notebook 06's relation on the same embedding: the manifold step does not lose to k-means on it
    assert s["deep AE + UMAP + GMM (N2D)"]["acc"]["mean"] >= s["deep AE + k-means"]["acc"]["mean"]
    assert s["DEC-DA"]["acc"]["mean"] >= P.min_dec_acc
    assert result["label_free_pick"] == {}  # one seed: nothing to choose from
    print(f"\nfast profile reproduce: {seconds:.0f} s\n{result['table']}")


def test_rerun_resumes_from_the_saved_stages(fast_results):
    out, result, _, seconds = fast_results
    t = time.perf_counter()
    proc = run("reproduce", "--profile", "fast", "--seeds", "1", "--out", str(out), "--no-progress", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - t < seconds / 2  # every stage came from progress.json
    again = json.loads((out / "results.json").read_text())
    assert again["summary"]["DEC"]["acc"] == result["summary"]["DEC"]["acc"]


def test_stages_option_adds_to_the_same_output_folder(fast_results, tmp_path):
    """A run with ``--stages`` picks up what an earlier run saved: the DEC-DA + UMAP + GMM stage, removed from a copy of
    the progress file, is recomputed from DEC-DA's saved embedding (no DEC-DA training), with the same result."""
    import shutil

    out, result, _, seconds = fast_results
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    state = json.loads((copy / "progress.json").read_text())
    del state["runs"]["0"]["DEC-DA + UMAP + GMM"]
    (copy / "progress.json").write_text(json.dumps(state))
    t = time.perf_counter()
    proc = run("reproduce", "--profile", "fast", "--seeds", "1", "--out", str(copy), "--no-progress", "--device",
               "cpu", "--stages", "decda-n2d,dec")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - t < seconds / 2  # no network was trained (this test's weight cache is empty)
    again = json.loads((copy / "results.json").read_text())
    assert list(again["summary"]) == ["DEC", "DEC-DA + UMAP + GMM"]  # pipeline order, only the stages asked for
    assert again["summary"]["DEC-DA + UMAP + GMM"]["acc"] == result["summary"]["DEC-DA + UMAP + GMM"]["acc"]
    assert again["per_seed"]["DEC"] == result["per_seed"]["DEC"]  # from progress.json, not rerun


def test_label_free_pick_is_the_consensus_of_seeds():
    from declib.pipeline import label_free_picks

    truth = np.repeat(np.arange(4), 50)
    merged = truth.copy()
    merged[merged == 1] = 0
    merged[:25] = 1
    runs = [{"labels": merged.tolist(), "acc": 0.75, "nmi": 0.7, "ari": 0.6, "merged": [[0, [0, 1]]]},
            {"labels": truth.tolist(), "acc": 1.0, "nmi": 1.0, "ari": 1.0, "merged": []},
            {"labels": ((truth + 1) % 4).tolist(), "acc": 1.0, "nmi": 1.0, "ari": 1.0, "merged": []}]
    pick = label_free_picks({"DEC": runs, "IDEC": runs[:2]})
    assert list(pick) == ["DEC"]  # two seeds are too few to take a vote
    assert pick["DEC"]["seed"] in (1, 2) and pick["DEC"]["merged"] is False
    assert pick["DEC"]["mean_ari_to_others"] > 0.5


@pytest.mark.parametrize("args, message", [
    (["reproduce", "--seeds", "0"], "--seeds: expected a positive integer"),
    (["reproduce", "--stages", "dec,nope"], "--stages: stages: expected names from"),
    (["reproduce", "--profile", "medium"], "invalid choice: 'medium'"),
    (["reproduce", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["dance"], "invalid choice: 'dance'"),
])
def test_bad_options_exit_with_code_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr


def test_help_explains_every_option():
    proc = run("reproduce", "--help")
    assert proc.returncode == 0
    for option in ("--profile", "--seeds", "--device", "--out", "--no-progress", "--stages"):
        assert option in proc.stdout


def test_pretrain_compares_schedules_and_reuses_the_cache(monkeypatch, mnist):
    """``compare_pretraining`` on 300 digits with a tiny schedule: both modes, scores in range, a second call loads
    every network from the cache (same numbers)."""
    from declib import pipeline
    from declib.stacked import SCHEDULES

    X, y = mnist
    monkeypatch.setattr(pipeline, "load_profile_data", lambda P: (X[:300], y[:300]))
    monkeypatch.setitem(SCHEDULES, "tiny", TINY)
    first = pipeline.compare_pretraining(["tiny"], seeds=2, device="cpu", progress=False)
    assert [(r["schedule"], r["layerwise"]) for r in first["rows"]] == [("tiny", True), ("tiny", False)]
    assert len(first["rows"][0]["acc"]) == 2
    # each accuracy is k-means (20 restarts, the seed's) on that network's embedding, scored against y
    from declib.autoencoder import encode
    from declib.kmeans import KMeans
    from declib.metrics import cluster_accuracy
    from declib.stacked import pretrained_autoencoder

    for row in first["rows"]:
        for seed, acc in enumerate(row["acc"]):
            model, _ = pretrained_autoencoder(X[:300], "tiny", seed=seed, device="cpu", layerwise=row["layerwise"],
                                              progress=False)
            labels = KMeans(10, n_init=20, seed=seed, keep_history=False).fit(encode(model, X[:300])).labels_
            assert acc == pytest.approx(cluster_accuracy(y[:300], labels))
    assert first["table"].count("| tiny |") == 2 and "layer-wise + fine-tuning" in first["table"]
    again = pipeline.compare_pretraining(["tiny"], seeds=2, device="cpu", progress=False)
    assert [r["acc"] for r in again["rows"]] == [r["acc"] for r in first["rows"]]
    assert [r["seconds"] for r in again["rows"]] == [r["seconds"] for r in first["rows"]]
    with pytest.raises(ValueError, match="schedules: expected names from"):
        pipeline.compare_pretraining(["nope"], seeds=1)
    with pytest.raises(ValueError, match="first_seed"):
        pipeline.compare_pretraining(["cpu"], seeds=1, first_seed=-1)


@pytest.mark.parametrize("args, message", [
    (["pretrain", "--schedule", "nope"], "--schedule: expected names from"),
    (["pretrain", "--seeds", "0"], "--seeds: expected a positive integer"),
    (["pretrain", "--mode", "sideways"], "invalid choice: 'sideways'"),
    (["levers", "--first-seed", "-1"], "--first-seed: expected a non-negative integer"),
    (["levers", "--only", "nope"], "--only: expected names from"),
])
def test_pretrain_bad_options_exit_with_code_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr


def test_pretrain_writes_its_rows_as_json(monkeypatch, mnist, tmp_path, capsys):
    from declib import pipeline
    from declib.__main__ import main
    from declib.stacked import SCHEDULES

    X, y = mnist
    monkeypatch.setattr(pipeline, "load_profile_data", lambda P: (X[:300], y[:300]))
    monkeypatch.setitem(SCHEDULES, "tiny", TINY)
    out = tmp_path / "rows.json"
    assert main(["pretrain", "--schedule", "tiny", "--seeds", "1", "--mode", "end-to-end", "--device", "cpu",
                 "--no-progress", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["schedule"], r["layerwise"], len(r["acc"])) for r in rows] == [("tiny", False, 1)]
    assert "| tiny | end-to-end only |" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.part"))
