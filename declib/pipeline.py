"""The course's pipeline, end to end: the stages the notebooks build one by one, run in a row for several seeds.

k-means on pixels → 784→10→784 autoencoder + k-means → deep (stacked) autoencoder + k-means → DEC → IDEC.

Every stage sees ``X`` only; the labels ``y`` are used to score. :func:`reproduce` writes ``results.json`` and the
figures into an output folder and keeps a progress file there, so an interrupted run (Ctrl-C) resumes with the
stages it had not finished; pretrained weights come from :mod:`declib.cache`.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__, config
from ._util import atomic_path, check_int
from .autoencoder import Autoencoder, encode, train_autoencoder
from .data import load_mnist, subset
from .dec import DEC
from .kmeans import KMeans
from .metrics import merged_digits, scores
from .stacked import SCHEDULES, Schedule, pretrained_autoencoder

__all__ = ["STAGES", "load_profile_data", "train_small_autoencoder", "dec_model", "reproduce", "summarise",
           "format_table", "compare_pretraining", "collapsed_seeds", "seed_merged"]

STAGES = ["k-means on pixels", "AE 784-10-784 + k-means", "deep AE + k-means", "DEC", "IDEC"]


def load_profile_data(P: config.Profile) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 digits (full profile) or the profile's stratified subset (seed 0, the same for every stage)."""
    X, y = load_mnist("all")
    return subset(X, y, P.n_samples, seed=P.subset_seed)


def train_small_autoencoder(X, P: config.Profile, seed: int, device=None, progress: bool = False,
                            code: int = 10, linear: bool = False) -> tuple[Autoencoder, dict]:
    """The 784→code→784 autoencoder of notebook 03: linear code, sigmoid reconstruction (identity when
    ``linear``), Adam with rate ``P.ae_lr``, ``P.ae_epochs`` epochs of batches of ``P.ae_batch_size``."""
    model = Autoencoder([X.shape[1], code], embedding_activation="identity",
                        output_activation="identity" if linear else "sigmoid", seed=seed)
    history = train_autoencoder(model, X, epochs=P.ae_epochs, batch_size=P.ae_batch_size, lr=P.ae_lr,
                                device=device, seed=seed, progress=progress,
                                cuda_graph=torch.device(config.resolve_device(device)).type == "cuda")
    return model, history


def _kmeans_scores(Z, y, P: config.Profile, seed, device, n_init: int | None = None):
    """k-means with K = ``P.n_clusters`` on ``Z`` (``n_init`` restarts, default ``P.embedding_kmeans_n_init``)."""
    km = KMeans(P.n_clusters, n_init=n_init or P.embedding_kmeans_n_init, seed=seed, device=device,
                keep_history=False).fit(Z)
    return km, scores(y, km.labels_)


def dec_model(sae, P: config.Profile, idec: bool = False, seed: int = 0, device=None, progress: bool = False) -> DEC:
    """An unfitted DEC (or IDEC, keeping the decoder) on a copy of ``sae``'s encoder, with the profile's settings."""
    net = copy.deepcopy(sae)
    common = dict(update_interval=P.dec_update_interval, max_iter=P.dec_max_iter, tol=P.dec_tol,
                  batch_size=P.dec_batch_size, precision=P.dec_precision, seed=seed, device=device, progress=progress)
    if idec:
        return DEC(net.encoder, P.n_clusters, decoder=net.decoder, gamma=P.idec_gamma, optimizer=P.idec_optimizer,
                   lr=P.idec_lr, **common)
    return DEC(net.encoder, P.n_clusters, optimizer=P.dec_optimizer, lr=P.dec_lr, **common)


def run_seed(X, y, P: config.Profile, seed: int, device, done: dict, record, progress: bool = True) -> None:
    """Run every stage not in ``done`` for one seed; ``record(stage, result)`` stores each finished stage."""
    device = config.resolve_device(device)
    if STAGES[0] not in done:
        t = time.perf_counter()
        _, s = _kmeans_scores(X, y, P, seed, device, n_init=P.kmeans_n_init)
        record(STAGES[0], {**s, "seconds": time.perf_counter() - t})
    if STAGES[1] not in done:
        t = time.perf_counter()
        ae, _ = train_small_autoencoder(X, P, seed, device, progress)
        _, s = _kmeans_scores(encode(ae, X), y, P, seed, device)
        record(STAGES[1], {**s, "seconds": time.perf_counter() - t})
    if any(stage not in done for stage in STAGES[2:]):
        t = time.perf_counter()
        sae, info = pretrained_autoencoder(X, P.sae_schedule, seed=seed, device=device, progress=progress,
                                           layerwise=P.sae_layerwise)
        trained_s = time.perf_counter() - t
        if STAGES[2] not in done:
            km, s = _kmeans_scores(encode(sae, X), y, P, seed, device)
            record(STAGES[2], {**s, "seconds": time.perf_counter() - t, "from_cache": info["from_cache"],
                               "train_seconds": trained_s, "precision": info.get("precision", "fp32"),
                               "cluster_sizes": np.bincount(km.labels_, minlength=P.n_clusters).tolist(),
                               "merged": merged_digits(y, km.labels_)})
        for stage, idec in ((STAGES[3], False), (STAGES[4], True)):
            if stage in done:
                continue
            model = dec_model(sae, P, idec=idec, seed=seed, device=device, progress=progress).fit(X, y)
            result = {**scores(y, model.labels_), "seconds": model.seconds_, "iterations": model.n_iter_,
                      "cluster_sizes": np.bincount(model.labels_, minlength=P.n_clusters).tolist(),
                      "merged": merged_digits(y, model.labels_)}
            if seed == 0:  # what the figures need, so they cost no second run
                idx = np.random.default_rng(0).choice(len(X), size=min(P.figure_sample, len(X)), replace=False)
                Z = model.embed(X[idx])
                Zc = Z - Z.mean(0)
                Z2 = Zc @ np.linalg.svd(Zc, full_matrices=False)[2][:2].T
                result.update(labels=model.labels_.tolist(), embedding_2d=Z2.round(4).tolist(),
                              embedding_idx=idx.tolist())
            record(stage, result)


def summarise(per_seed: dict[str, list[dict]]) -> dict:
    """Mean and standard deviation over seeds of acc, NMI, ARI and seconds for every stage."""
    out = {}
    for stage in STAGES:
        runs = per_seed.get(stage, [])
        if not runs:
            continue
        out[stage] = {m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs])),
                          "values": [float(r[m]) for r in runs]} for m in ("acc", "nmi", "ari", "seconds")}
    return out


def seed_merged(run: dict, y: np.ndarray) -> bool:
    """Whether one seed's clustering merged two digits into one cluster.

    Runs record ``merged`` (:func:`declib.metrics.merged_digits`: a cluster holding most of two classes), which
    decides. Results written before that field existed hold only the cluster sizes; for them a cluster of more than
    1.4 × the largest class counts as two digits merged: a merged pair of MNIST digits makes a cluster of about
    1.5–1.8 × a class (11,455 to 12,464 digits in the H100 runs), a healthy clustering stays below 1.25 × (9,379
    there, against 7,877 ones, the largest class).
    """
    if "merged" in run:
        return bool(run["merged"])
    return max(run["cluster_sizes"]) > 1.4 * np.bincount(y).max()


def collapsed_seeds(per_seed: dict[str, list[dict]], stage: str, y: np.ndarray) -> int:
    """How many seeds of ``stage`` merged two digits into one cluster (see :func:`seed_merged`)."""
    return int(sum(seed_merged(r, y) for r in per_seed.get(stage, [])))


def format_table(summary: dict) -> str:
    """A Markdown table: stage, accuracy, NMI, ARI, seconds (mean ± std over seeds)."""
    lines = ["| stage | accuracy | NMI | ARI | seconds |", "| --- | --- | --- | --- | --- |"]
    for stage, m in summary.items():
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in ("acc", "nmi", "ari")]
        seconds = f"{m['seconds']['mean']:.1f} ± {m['seconds']['std']:.1f}"
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {seconds} |")
    return "\n".join(lines)


def _atomic_json(path: Path, data) -> None:
    """Write ``data`` as JSON so that ``path`` is never half-written (see :func:`declib._util.atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _processor_name(device: torch.device) -> str:
    """The CPU's model name (Linux: /proc/cpuinfo) or the device type, for the results' record."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{device.type}: {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"{device.type}: {platform.processor() or 'unknown processor'}"


def _figures(out: Path, y, dec_run: dict) -> list[str]:
    """The confusion matrix of DEC's first seed and the 2-D PCA projection of its embedding."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .metrics import mapped_confusion_matrix
    from .plots import confusion_heatmap, embedding_scatter

    matrix, classes, order = mapped_confusion_matrix(y, np.array(dec_run["labels"]))
    fig = confusion_heatmap(matrix, classes, order, title=f"DEC on {len(y):,} MNIST digits (seed 0)")
    fig.savefig(out / "confusion_dec.png", dpi=110)
    idx = np.array(dec_run["embedding_idx"])
    fig = embedding_scatter(np.array(dec_run["embedding_2d"]), y[idx], title="DEC embedding (PCA of z, seed 0)")
    fig.savefig(out / "embedding_dec.png", dpi=110)
    plt.close("all")
    return ["confusion_dec.png", "embedding_dec.png"]


def reproduce(profile: str | None = None, seeds: int | None = None, device="auto", out: str | os.PathLike = "results",
              progress: bool = True, figures: bool = True) -> dict:
    """Run the whole pipeline for ``seeds`` seeds and write ``results.json`` (and figures) into ``out``."""
    P = config.profile(profile)
    seeds = P.dec_seeds if seeds is None else seeds
    device = config.resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X, y = load_profile_data(P)
    settings = {"profile": P.name, "seeds": seeds, "n_samples": int(len(y)), "device": str(device),
                "sae_schedule": SCHEDULES[P.sae_schedule].__dict__, "sae_layerwise": P.sae_layerwise,
                "dec_update_interval": P.dec_update_interval, "dec_max_iter": P.dec_max_iter, "dec_tol": P.dec_tol,
                "dec_precision": config.resolve_precision(P.dec_precision, device, warn=False)}
    settings = json.loads(json.dumps(settings))  # as read back from progress.json (tuples become lists)
    progress_file = out / "progress.json"
    state = json.loads(progress_file.read_text()) if progress_file.exists() else {}
    if state.get("settings") != settings:
        state = {"settings": settings, "runs": {}}
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=seeds * len(STAGES), desc="reproduce", unit="stage", disable=not progress)
    for seed in range(seeds):
        runs = state["runs"].setdefault(str(seed), {})
        bar.update(len(runs))

        def record(stage, result, runs=runs):
            runs[stage] = result
            _atomic_json(progress_file, state)
            bar.update(1)
            bar.set_postfix_str(f"seed {seed}: {stage} acc {result['acc']:.3f}")

        run_seed(X, y, P, seed, device, runs, record, progress=False)
    bar.close()
    per_seed = {stage: [state["runs"][str(s)][stage] for s in range(seeds)] for stage in STAGES}
    first_dec = per_seed["DEC"][0]
    per_seed = {stage: [{k: v for k, v in r.items() if k not in ("labels", "embedding_2d", "embedding_idx")}
                        for r in runs] for stage, runs in per_seed.items()}
    summary = summarise(per_seed)
    result = {
        "settings": settings,
        "summary": summary,
        "per_seed": per_seed,
        "collapsed_seeds": {s: collapsed_seeds(per_seed, s, y) for s in ("deep AE + k-means", "DEC", "IDEC")},
        "wall_seconds": time.perf_counter() - t0,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _processor_name(device),
        "cpu_count": os.cpu_count(),
        "versions": {"declib": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "table": format_table(summary),
    }
    if figures:
        result["figures"] = _figures(out, y, first_dec)
    _atomic_json(out / "results.json", result)
    return result


def compare_pretraining(schedules: list, seeds: int = 3, modes: tuple[bool, ...] = (True, False),
                        profile: str | None = None, device="auto", progress: bool = True,
                        labels: list[str] | None = None, first_seed: int = 0) -> dict:
    """k-means (20 restarts) on the deep embedding for each schedule × pretraining mode × seed.

    ``modes`` holds ``layerwise`` values: True is greedy layer-wise pretraining + fine-tuning, False the same
    fine-tuning from a random initialisation (end to end only). Networks come from the weight cache when present,
    and the ones trained here go into it. Returns ``{"rows": [...], "table": markdown, "device": ...}``; each row has
    the per-seed accuracy, NMI and training seconds (the seconds of the run that trained the network, possibly an
    earlier one on another device, which the row names).
    """
    P = config.profile(profile)
    unknown = [s for s in schedules if not isinstance(s, Schedule) and s not in SCHEDULES]
    if unknown or not schedules:
        raise ValueError(f"schedules: expected names from {sorted(SCHEDULES)} or Schedule objects, got {schedules!r}")
    labels = labels or [s if isinstance(s, str) else s.name for s in schedules]
    check_int(seeds, "seeds", 1)
    check_int(first_seed, "first_seed", 0)
    device = config.resolve_device(device)
    X, y = load_profile_data(P)
    rows = []
    for name, label in zip(schedules, labels):
        for layerwise in modes:
            row = {"schedule": label, "layerwise": layerwise, "acc": [], "nmi": [], "seconds": [], "trained_on": [],
                   "precision": []}
            for seed in range(first_seed, first_seed + seeds):
                model, info = pretrained_autoencoder(X, name, seed=seed, device=device, layerwise=layerwise,
                                                     progress=progress)
                _, s = _kmeans_scores(encode(model, X), y, P, seed, device)
                row["acc"].append(s["acc"])
                row["nmi"].append(s["nmi"])
                row["seconds"].append(float(sum(info["seconds"].values())))
                row["trained_on"].append(info["device"])
                row["precision"].append(info.get("precision", "fp32"))
                if progress:
                    print(f"{label} {'layer-wise + fine-tuning' if layerwise else 'end-to-end only'} seed {seed}: "
                          f"acc {s['acc']:.3f} nmi {s['nmi']:.3f} ({row['seconds'][-1]:.0f} s on "
                          f"{info['device']})", flush=True)
            rows.append(row)
    lines = ["| schedule | pretraining | accuracy | NMI | training seconds | trained on | accuracy per seed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['schedule']} | {'layer-wise + fine-tuning' if r['layerwise'] else 'end-to-end only'} | "
                     f"{np.mean(r['acc']):.3f} ± {np.std(r['acc']):.3f} | {np.mean(r['nmi']):.3f} ± "
                     f"{np.std(r['nmi']):.3f} | {np.mean(r['seconds']):.0f} | "
                     f"{', '.join(sorted({f'{d} ({p})' for d, p in zip(r['trained_on'], r['precision'])}))} | "
                     f"{' / '.join(f'{a:.3f}' for a in r['acc'])} |")
    return {"profile": P.name, "n_samples": int(len(y)), "rows": rows, "table": "\n".join(lines),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)}
