"""``python -m declib reproduce``: the course's headline results, end to end, in one command."""

from __future__ import annotations

import argparse
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m declib", description="declib: from k-means to Deep Embedded "
                                     "Clustering on MNIST.")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "reproduce",
        help="run the whole pipeline and print one results table",
        description="Run the course's pipeline on MNIST — k-means on pixels, 784→10→784 autoencoder + k-means, "
        "deep autoencoder + k-means, DEC, IDEC, and notebook 06's successors (UMAP + Gaussian mixture on the deep "
        "embedding, DEC-DA, UMAP + Gaussian mixture on DEC-DA's embedding) — for several seeds; print accuracy, NMI, "
        "ARI and wall time per stage (mean ± std over seeds) and write results.json and figures into --out. "
        "Pretrained weights come from the declib cache when present; an interrupted run (Ctrl-C) resumes where it "
        "stopped, and a run with other --stages adds to the same --out.",
    )
    rep.add_argument("--profile", choices=["auto", "cpu", "full", "fast"], default=None,
                     help="cpu: all 70,000 digits with the CPU schedules (minutes a seed on a laptop); full: all "
                     "70,000 digits with the paper-scale schedules, for a GPU; fast: a 10,000-digit subset; auto: full "
                     "with a CUDA GPU, else cpu (default: $DECLIB_PROFILE, fast if DECLIB_FAST=1, else auto)")
    rep.add_argument("--seeds", type=int, default=None,
                     help="number of seeds 0..N-1 (default: the profile's: 3 for cpu, 5 for full, 1 for fast)")
    rep.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                     help="where to train: auto picks CUDA, then MPS, then the CPU (default: auto)")
    rep.add_argument("--out", default="results", help="output folder for results.json and figures (default: results)")
    rep.add_argument("--stages", default=None, metavar="LIST",
                     help="comma-separated stages to run, in pipeline order whatever the order given: pixels, ae, "
                     "deep, dec, idec, n2d (deep AE + UMAP + GMM), decda (DEC-DA), decda-n2d (DEC-DA + UMAP + GMM) "
                     "(default: all)")
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    rep.set_defaults(subparser=rep)
    pre = sub.add_parser(
        "pretrain",
        help="train the stacked autoencoder with named schedules and compare k-means on its embedding",
        description="For each schedule, each pretraining mode and each seed: train the deep autoencoder "
        "784-500-500-2000-10 (or load it from the cache), run k-means (20 restarts) on its 10-d embedding and print "
        "accuracy, NMI and training time; layer-wise + fine-tuning against end-to-end only.",
    )
    pre.add_argument("--schedule", action="append", default=None, metavar="NAME",
                     help="a schedule of declib.stacked.SCHEDULES; repeat to compare several (default: the "
                     "profile's)")
    pre.add_argument("--seeds", type=int, default=3, help="number of seeds 0..N-1 (default: 3)")
    pre.add_argument("--mode", choices=["layerwise", "end-to-end", "both"], default="both",
                     help="layer-wise pretraining + fine-tuning, end-to-end training only, or both (default)")
    pre.add_argument("--profile", choices=["auto", "cpu", "full", "fast"], default=None,
                     help="the data: all 70,000 digits (cpu, full) or the 10,000-digit subset (fast)")
    pre.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    pre.add_argument("--out", default=None, help="also write the rows as JSON to this file")
    pre.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    pre.set_defaults(subparser=pre)
    lev = sub.add_parser(
        "levers",
        help="measure the CPU schedule's choices one at a time (k-means on the deep embedding, all 70,000 digits)",
        description="Train the deep autoencoder end to end with the CPU schedule and with variants that each change "
        "one of its choices (augmentation, noise, precision, batch size, learning-rate schedule, epochs); print "
        "k-means (20 restarts) accuracy, NMI and training seconds for each (declib.stacked.cpu_levers).",
    )
    lev.add_argument("--seeds", type=int, default=1, help="number of seeds (default: 1)")
    lev.add_argument("--first-seed", type=int, default=0, help="the first seed (default: 0)")
    lev.add_argument("--only", action="append", default=None, metavar="NAME",
                     help="run only this variant (repeatable; default: all)")
    lev.add_argument("--profile", choices=["auto", "cpu", "full", "fast"], default="cpu",
                     help="the data: all 70,000 digits (cpu, full) or the 10,000-digit subset (fast)")
    lev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    lev.add_argument("--out", default=None, help="also write the rows as JSON to this file")
    lev.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    lev.set_defaults(subparser=lev)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        args.subparser.error(f"--seeds: expected a positive integer, got {args.seeds}")
    if getattr(args, "first_seed", 0) < 0:
        args.subparser.error(f"--first-seed: expected a non-negative integer, got {args.first_seed}")
    from . import config
    from .pipeline import reproduce

    try:
        device = config.resolve_device(args.device)
    except ValueError as exc:
        args.subparser.error(f"--device: {exc}")
    if getattr(args, "stages", None) is not None:
        from .pipeline import parse_stages

        try:
            parse_stages(args.stages)
        except ValueError as exc:
            args.subparser.error(f"--stages: {exc}")
    if args.command in ("pretrain", "levers"):
        return _pretrain(args, device)
    t = time.perf_counter()
    try:
        result = reproduce(args.profile, args.seeds, device, args.out, progress=not args.no_progress,
                           stages=args.stages)
    except KeyboardInterrupt:
        print("\ninterrupted: finished stages are saved in --out and the weight cache; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    s = result["settings"]
    print(f"\nprofile {s['profile']}, {s['n_samples']:,} digits, {s['seeds']} seed(s), device {result['device']}, "
          f"wall time {time.perf_counter() - t:.0f} s\n")
    print(result["table"])
    merged = result["collapsed_seeds"]
    if merged:
        print(f"\nseeds with two digits merged in one cluster: " + ", ".join(f"{k} {v}" for k, v in merged.items())
              + f" (of {s['seeds']})")
    for stage, pick in result["label_free_pick"].items():
        print(f"label-free pick (consensus of seeds) for {stage}: seed {pick['seed']}, acc {pick['acc']:.3f}")
    print(f"results: {args.out}/results.json")
    return 0


def _pretrain(args, device) -> int:
    from pathlib import Path

    from . import config
    from .pipeline import _atomic_json, compare_pretraining
    from .stacked import SCHEDULES

    labels = None
    if args.command == "levers":
        from .stacked import cpu_levers

        levers = cpu_levers()
        chosen = args.only or list(levers)
        unknown = [n for n in chosen if n not in levers]
        if unknown:
            args.subparser.error(f"--only: expected names from {list(levers)}, got {', '.join(unknown)}")
        names, labels, modes = [levers[n] for n in chosen], chosen, (False,)
    else:
        names = args.schedule or [config.profile(args.profile).sae_schedule]
        unknown = [n for n in names if n not in SCHEDULES]
        if unknown:
            args.subparser.error(f"--schedule: expected names from {sorted(SCHEDULES)}, got {', '.join(unknown)}")
        modes = {"layerwise": (True,), "end-to-end": (False,), "both": (True, False)}[args.mode]
    t = time.perf_counter()
    try:
        result = compare_pretraining(names, args.seeds, modes, args.profile, device, progress=not args.no_progress,
                                     labels=labels, first_seed=getattr(args, "first_seed", 0))
    except KeyboardInterrupt:
        print("\ninterrupted: trained layers and fine-tuning epochs are in the weight cache; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    print(f"\nprofile {result['profile']}, {result['n_samples']:,} digits, device {result['device']}, wall time "
          f"{time.perf_counter() - t:.0f} s\n")
    print(result["table"])
    if args.out:
        _atomic_json(Path(args.out), result)  # never a half-written file
    return 0


if __name__ == "__main__":
    sys.exit(main())
