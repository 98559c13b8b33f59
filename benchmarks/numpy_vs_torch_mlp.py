"""One training epoch of declib's NumPy MLP against the same network in PyTorch, on the CPU.

    python benchmarks/numpy_vs_torch_mlp.py [--repeats 5] [--batch-size 128] [--dtype float32|float64]

Network 784-256-10, ReLU, softmax cross-entropy, SGD with momentum 0.9, one pass over the 60,000 training digits in
shuffled minibatches; both sides use the same dtype and the same number of CPU threads. Prints the median epoch
time of each and their ratio (NumPy / torch; the goal is at most 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from declib.data import load_mnist
from declib.nn import MLP, SGD


def numpy_epoch(X, y, batch_size, dtype, seed):
    model = MLP([784, 256, 10], seed=seed, dtype=dtype)
    opt = SGD(model.params, lr=0.05, momentum=0.9)
    order = np.random.default_rng(seed).permutation(len(X))
    t = time.perf_counter()
    for s in range(0, len(X), batch_size):
        idx = order[s : s + batch_size]
        model.compute_loss(X[idx], y[idx])
        opt.step(model.backward(y[idx]))
    return time.perf_counter() - t, model.score(X[:10000], y[:10000])


def torch_epoch(X, y, batch_size, dtype, seed):
    torch.manual_seed(seed)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(tdtype)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(X)))
    t = time.perf_counter()
    for s in range(0, len(X), batch_size):
        idx = order[s : s + batch_size]
        opt.zero_grad(set_to_none=True)
        loss_fn(net(Xt[idx]), yt[idx]).backward()
        opt.step()
    elapsed = time.perf_counter() - t
    with torch.no_grad():
        acc = float((net(Xt[:10000]).argmax(1) == yt[:10000]).double().mean())
    return elapsed, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args()
    dtype = np.dtype(args.dtype).type
    X, y = load_mnist("train")
    X = X.astype(dtype)
    print(f"784-256-10 ReLU/softmax-CE, SGD momentum, batch {args.batch_size}, {args.dtype}, 60,000 digits; "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    torch_epoch(X[:2048], y[:2048], args.batch_size, dtype, 0)  # warm-up
    times = {"numpy": [], "torch": []}
    for rep in range(args.repeats):
        tn, acc_n = numpy_epoch(X, y, args.batch_size, dtype, rep)
        tt, acc_t = torch_epoch(X, y, args.batch_size, dtype, rep)
        times["numpy"].append(tn)
        times["torch"].append(tt)
        print(f"  repeat {rep}: numpy {tn:5.2f} s (train acc {acc_n:.3f})   torch {tt:5.2f} s (train acc {acc_t:.3f})")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedian epoch: numpy {med['numpy']:.2f} s, torch {med['torch']:.2f} s")
    print(f"ratio numpy / torch = {med['numpy'] / med['torch']:.2f}  (goal <= 2.0)")


if __name__ == "__main__":
    main()
