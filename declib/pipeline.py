"""The course's pipeline, end to end: the stages the notebooks build one by one, run in a row for several seeds.

k-means on pixels → 784→10→784 autoencoder + k-means → deep (stacked) autoencoder + k-means → DEC → IDEC, and
notebook 06's successors on the same deep autoencoder: UMAP + Gaussian mixture on its embedding (N2D), DEC with
augmented digits in its clustering stage (DEC-DA), and UMAP + Gaussian mixture on DEC-DA's embedding.

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
from .augment import make_augment
from .autoencoder import Autoencoder, encode, train_autoencoder
from .data import load_mnist, subset
from .dec import DEC
from .kmeans import KMeans
from .manifold import ManifoldGMM
from .metrics import ari, merged_digits, scores
from .selection import consensus_pick
from .stacked import SCHEDULES, Schedule, pretrained_autoencoder

__all__ = ["STAGES", "STAGE_KEYS", "parse_stages", "load_profile_data", "train_small_autoencoder", "dec_model",
           "manifold_model", "label_free_picks", "reproduce", "summarise", "format_table", "compare_pretraining",
           "collapsed_seeds", "seed_merged"]

STAGES = ["k-means on pixels", "AE 784-10-784 + k-means", "deep AE + k-means", "DEC", "IDEC",
          "deep AE + UMAP + GMM (N2D)", "DEC-DA", "DEC-DA + UMAP + GMM"]
#: short names for ``python -m declib reproduce --stages``
STAGE_KEYS = dict(zip(["pixels", "ae", "deep", "dec", "idec", "n2d", "decda", "decda-n2d"], STAGES))


def parse_stages(stages) -> list[str]:
    """Stage names in pipeline order from short keys (``"dec,decda"``, a list) or full names; ``None``: all."""
    if stages is None:
        return list(STAGES)
    items = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    chosen = set()
    for item in items:
        if item in STAGE_KEYS:
            chosen.add(STAGE_KEYS[item])
        elif item in STAGES:
            chosen.add(item)
        else:
            raise ValueError(f"stages: expected names from {', '.join(STAGE_KEYS)} (or {STAGES}), got {item!r}")
    if not chosen:
        raise ValueError("stages: expected at least one stage")
    return [s for s in STAGES if s in chosen]


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


def dec_model(sae, P: config.Profile, idec: bool = False, seed: int = 0, device=None, progress: bool = False,
              augment: bool = False, n_clusters: int | None = None) -> DEC:
    """An unfitted DEC (or IDEC, keeping the decoder) on a copy of ``sae``'s encoder, with the profile's settings;
    ``augment``: DEC-DA, the clustering stage sees digits augmented by ``P.dec_augment`` (shift, rotation);
    ``n_clusters`` defaults to ``P.n_clusters``."""
    net = copy.deepcopy(sae)
    common = dict(update_interval=P.dec_update_interval, max_iter=P.dec_max_iter, tol=P.dec_tol,
                  batch_size=P.dec_batch_size, precision=P.dec_precision, seed=seed, device=device, progress=progress,
                  augment=make_augment(*P.dec_augment) if augment else None)
    k = P.n_clusters if n_clusters is None else n_clusters
    if idec:
        return DEC(net.encoder, k, decoder=net.decoder, gamma=P.idec_gamma, optimizer=P.idec_optimizer,
                   lr=P.idec_lr, **common)
    return DEC(net.encoder, k, optimizer=P.dec_optimizer, lr=P.dec_lr, **common)


def manifold_model(P: config.Profile, seed: int = 0) -> ManifoldGMM:
    """An unfitted UMAP + Gaussian mixture (N2D) with the profile's settings."""
    return ManifoldGMM(P.n_clusters, n_components=P.umap_n_components, n_neighbors=P.umap_n_neighbors,
                       min_dist=P.umap_min_dist, seed=seed)


def _labels_result(y, labels, K: int) -> dict:
    """What every clustering stage records besides its scores and seconds."""
    return {"cluster_sizes": np.bincount(labels, minlength=K).tolist(), "merged": merged_digits(y, labels),
            "labels": np.asarray(labels).tolist()}


def run_seed(X, y, P: config.Profile, seed: int, device, done: dict, record, progress: bool = True,
             stages: list[str] | None = None, scratch: Path | None = None) -> None:
    """Run every stage of ``stages`` (default: all) not in ``done`` for one seed; ``record(stage, result)`` stores
    each finished stage. ``scratch`` (a folder) keeps DEC-DA's embedding, so that its UMAP + GMM stage resumes
    without training DEC-DA again."""
    device = config.resolve_device(device)
    todo = [s for s in (stages or STAGES) if s not in done]
    K = P.n_clusters
    if STAGES[0] in todo:
        t = time.perf_counter()
        km, s = _kmeans_scores(X, y, P, seed, device, n_init=P.kmeans_n_init)
        record(STAGES[0], {**s, "seconds": time.perf_counter() - t, **_labels_result(y, km.labels_, K)})
    if STAGES[1] in todo:
        t = time.perf_counter()
        ae, _ = train_small_autoencoder(X, P, seed, device, progress)
        km, s = _kmeans_scores(encode(ae, X), y, P, seed, device)
        record(STAGES[1], {**s, "seconds": time.perf_counter() - t, **_labels_result(y, km.labels_, K)})
    path = None if scratch is None else Path(scratch) / f"embedding-decda-s{seed}.npy"
    saved_da = STAGES[6] not in todo and path is not None and path.exists()  # DEC-DA's embedding, kept earlier
    train_da = STAGES[6] in todo or (STAGES[7] in todo and not saved_da)
    Z_da = None
    if any(stage in todo for stage in STAGES[2:6]) or train_da:
        Z_da = _network_stages(X, y, P, seed, device, todo, record, progress, train_da, path)
    if STAGES[7] in todo:  # the manifold step on DEC-DA's embedding (computed above, or saved by an earlier run)
        m = manifold_model(P, seed).fit(np.load(path) if Z_da is None else Z_da)
        record(STAGES[7], _manifold_result(y, m, K))


def _manifold_result(y, m: ManifoldGMM, K: int) -> dict:
    return {**scores(y, m.labels_), "seconds": m.seconds_, "umap_seconds": m.umap_seconds_,
            **_labels_result(y, m.labels_, K)}


def _network_stages(X, y, P: config.Profile, seed: int, device, todo: list[str], record, progress: bool,
                    train_da: bool, path: Path | None) -> np.ndarray | None:
    """The stages on the deep autoencoder (k-means, DEC, IDEC, N2D, DEC-DA); returns DEC-DA's embedding when
    ``train_da`` (and saves it at ``path``)."""
    K = P.n_clusters
    t = time.perf_counter()
    sae, info = pretrained_autoencoder(X, P.sae_schedule, seed=seed, device=device, progress=progress,
                                       layerwise=P.sae_layerwise)
    loaded_s = time.perf_counter() - t
    Z = encode(sae, X) if STAGES[2] in todo or STAGES[5] in todo else None
    if STAGES[2] in todo:
        km, s = _kmeans_scores(Z, y, P, seed, device)
        record(STAGES[2], {**s, "seconds": time.perf_counter() - t, "from_cache": info["from_cache"],
                           "train_seconds": loaded_s, "sae_train_seconds": float(sum(info["seconds"].values())),
                           "precision": info.get("precision", "fp32"), **_labels_result(y, km.labels_, K)})
    for stage, idec in ((STAGES[3], False), (STAGES[4], True)):
        if stage not in todo:
            continue
        model = dec_model(sae, P, idec=idec, seed=seed, device=device, progress=progress).fit(X, y)
        result = {**scores(y, model.labels_), "seconds": model.seconds_, "iterations": model.n_iter_,
                  **_labels_result(y, model.labels_, K)}
        if seed == 0:  # what the figures need, so they cost no second run
            idx = np.random.default_rng(0).choice(len(X), size=min(P.figure_sample, len(X)), replace=False)
            Zs = model.embed(X[idx])
            Zc = Zs - Zs.mean(0)
            Z2 = Zc @ np.linalg.svd(Zc, full_matrices=False)[2][:2].T
            result.update(embedding_2d=Z2.round(4).tolist(), embedding_idx=idx.tolist())
        record(stage, result)
    if STAGES[5] in todo:
        record(STAGES[5], _manifold_result(y, manifold_model(P, seed).fit(Z), K))
    if not train_da:
        return None
    model = dec_model(sae, P, seed=seed, device=device, progress=progress, augment=True).fit(X, y)
    Z_da = model.embed(X)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, Z_da)
    if STAGES[6] in todo:
        record(STAGES[6], {**scores(y, model.labels_), "seconds": model.seconds_, "iterations": model.n_iter_,
                           **_labels_result(y, model.labels_, K)})
    return Z_da


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


def label_free_picks(per_seed: dict[str, list[dict]]) -> dict:
    """For every stage with three seeds or more, the seed that :func:`declib.selection.consensus_pick` keeps
    (the partition with the largest mean ARI to the other seeds', computed without labels) and its scores.
    ``per_seed`` runs must still hold their ``labels``."""
    picks = {}
    for stage, runs in per_seed.items():
        if len(runs) < 3 or any("labels" not in r for r in runs):
            continue
        labelings = [np.asarray(r["labels"]) for r in runs]
        r = consensus_pick(labelings)
        agreement = [ari(labelings[r], l) for i, l in enumerate(labelings) if i != r]
        picks[stage] = {"seed": r, "acc": runs[r]["acc"], "nmi": runs[r]["nmi"], "ari": runs[r]["ari"],
                        "merged": seed_merged(runs[r], None), "mean_ari_to_others": float(np.mean(agreement))}
    return picks


def reproduce(profile: str | None = None, seeds: int | None = None, device="auto", out: str | os.PathLike = "results",
              progress: bool = True, figures: bool = True, stages=None) -> dict:
    """Run the pipeline's ``stages`` (default: all; short names as :data:`STAGE_KEYS`) for ``seeds`` seeds and write
    ``results.json`` (and figures) into ``out``.

    Finished stages are kept in ``out/progress.json`` (with DEC-DA's embedding in ``out/scratch/``), so the same
    command resumes after an interruption, and a later call with other ``stages`` or more seeds adds to what is
    there as long as the profile's settings are the same. ``results.json`` holds the chosen stages only."""
    P = config.profile(profile)
    seeds = P.dec_seeds if seeds is None else check_int(seeds, "seeds", 1)
    stages = parse_stages(stages)
    device = config.resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X, y = load_profile_data(P)
    settings = {"profile": P.name, "n_samples": int(len(y)), "device": str(device),
                "sae_schedule": SCHEDULES[P.sae_schedule].__dict__, "sae_layerwise": P.sae_layerwise,
                "dec_update_interval": P.dec_update_interval, "dec_max_iter": P.dec_max_iter, "dec_tol": P.dec_tol,
                "dec_precision": config.resolve_precision(P.dec_precision, device, warn=False),
                "dec_augment": P.dec_augment, "umap": {"n_components": P.umap_n_components,
                                                       "n_neighbors": P.umap_n_neighbors,
                                                       "min_dist": P.umap_min_dist}}
    settings = json.loads(json.dumps(settings))  # as read back from progress.json (tuples become lists)
    progress_file = out / "progress.json"
    state = json.loads(progress_file.read_text()) if progress_file.exists() else {}
    if state.get("settings") != settings:
        state = {"settings": settings, "runs": {}}
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=seeds * len(stages), desc="reproduce", unit="stage", disable=not progress)
    for seed in range(seeds):
        runs = state["runs"].setdefault(str(seed), {})
        bar.update(sum(stage in runs for stage in stages))

        def record(stage, result, runs=runs):
            runs[stage] = result
            _atomic_json(progress_file, state)
            bar.update(1)
            bar.set_postfix_str(f"seed {seed}: {stage} acc {result['acc']:.3f}")

        run_seed(X, y, P, seed, device, runs, record, progress=False, stages=stages, scratch=out / "scratch")
    bar.close()
    per_seed = {stage: [state["runs"][str(s)][stage] for s in range(seeds)] for stage in stages}
    picks = label_free_picks(per_seed)
    first_dec = per_seed["DEC"][0] if "DEC" in per_seed else None
    per_seed = {stage: [{k: v for k, v in r.items() if k not in ("labels", "embedding_2d", "embedding_idx")}
                        for r in runs] for stage, runs in per_seed.items()}
    summary = summarise(per_seed)
    result = {
        "settings": {**settings, "seeds": seeds, "stages": stages},
        "summary": summary,
        "per_seed": per_seed,
        "collapsed_seeds": {s: collapsed_seeds(per_seed, s, y) for s in stages if s not in STAGES[:2]},
        "label_free_pick": picks,
        "wall_seconds": time.perf_counter() - t0,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _processor_name(device),
        "cpu_count": os.cpu_count(),
        "versions": {"declib": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "table": format_table(summary),
    }
    if figures and first_dec is not None:
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
