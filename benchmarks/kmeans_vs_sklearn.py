"""declib's KMeans against scikit-learn's (Lloyd) on all 70,000 MNIST digits.

    python benchmarks/kmeans_vs_sklearn.py [--repeats 3] [--n-init 10] [--device cpu|cuda] [--n N]

Both fit K = 10 with the same n_init and the same stopping rule in effect (scikit-learn's tol=1e-4 sums the squared
centroid shifts, declib averages them over K, so declib gets tol=1e-4/K), k-means++ initialisation, and each repeat
uses a new seed for both. Prints the median wall times, their ratio (declib / scikit-learn; below 1 means declib is
faster) and the best inertia of each.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from sklearn.cluster import KMeans as SKKMeans

from declib.data import load_mnist, subset
from declib.kmeans import KMeans
from declib.metrics import cluster_accuracy, nmi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-init", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n", type=int, default=70_000, help="number of digits (stratified subset below 70,000)")
    ap.add_argument("--device", default="cpu", help="declib's device: cpu, cuda or mps")
    args = ap.parse_args()

    X, y = load_mnist()
    X, y = subset(X, y, args.n, seed=0)
    print(f"MNIST {X.shape}, K={args.k}, n_init={args.n_init}, repeats={args.repeats}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, declib device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))

    if args.device == "cuda":  # warm up CUDA outside the timings
        KMeans(args.k, n_init=1, max_iter=2, seed=0, device="cuda").fit(X[:1000])
    rows = {"scikit-learn": [], "declib": []}
    for rep in range(args.repeats):
        t = time.perf_counter()
        sk = SKKMeans(args.k, n_init=args.n_init, tol=1e-4, algorithm="lloyd", random_state=rep).fit(X)
        rows["scikit-learn"].append((time.perf_counter() - t, sk.inertia_, sk.labels_, sk.n_iter_))
        t = time.perf_counter()
        ours = KMeans(args.k, n_init=args.n_init, tol=1e-4 / args.k, seed=rep, device=args.device,
                      keep_history=False).fit(X)
        if args.device == "cuda":
            torch.cuda.synchronize()
        rows["declib"].append((time.perf_counter() - t, ours.inertia_, ours.labels_, ours.n_iter_))
        print(f"  repeat {rep}: scikit-learn {rows['scikit-learn'][-1][0]:6.2f} s   declib {rows['declib'][-1][0]:6.2f} s")

    med = {name: statistics.median(r[0] for r in runs) for name, runs in rows.items()}
    best = {name: min(r[1] for r in runs) for name, runs in rows.items()}
    print()
    print(f"{'':14s} {'median s':>9s} {'best inertia':>14s} {'acc':>6s} {'NMI':>6s}")
    for name, runs in rows.items():
        labels = min(runs, key=lambda r: r[1])[2]
        print(f"{name:14s} {med[name]:9.2f} {best[name]:14.1f} {cluster_accuracy(y, labels):6.3f} "
              f"{nmi(y, labels):6.3f}")
    ratio = med["declib"] / med["scikit-learn"]
    gap = (best["declib"] - best["scikit-learn"]) / best["scikit-learn"]
    print(f"\ntime ratio declib / scikit-learn = {ratio:.2f}  (goal <= 1.0)")
    print(f"best inertia, declib relative to scikit-learn = {gap:+.3%}  (goal within 0.5%)")


if __name__ == "__main__":
    main()
