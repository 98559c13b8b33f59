"""Training throughput of the deep autoencoder 784-500-500-2000-10-500-500-2000-784 (DEC's), all 70,000 digits.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--batch-size 256] [--epochs 1]

Measures, on the chosen device, the median time of one SGD step (eager PyTorch, and replayed as a CUDA graph on a
GPU) and the wall time of one epoch over 70,000 digits through ``declib.autoencoder.train_autoencoder``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from declib.autoencoder import train_autoencoder
from declib.config import resolve_device
from declib.data import load_mnist
from declib.stacked import StackedAutoencoder


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_time(device, batch_size, graph: bool, n_steps=200) -> float:
    model = StackedAutoencoder(seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.rand(batch_size, 784, device=device)

    def step():
        opt.zero_grad(set_to_none=not graph)
        F.mse_loss(model(x), x).backward()
        opt.step()

    if graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            F.mse_loss(model(x), x).backward()
            opt.step()
        run = g.replay
    else:
        run = step
    for _ in range(10):
        run()
    times = []
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        for _ in range(n_steps):
            run()
        sync(device)
        times.append((time.perf_counter() - t) / n_steps)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch_size}; network 784-500-500-2000-10-2000-500-500-784")
    n_steps = 200 if device.type == "cuda" else 20
    eager = step_time(device, args.batch_size, False, n_steps)
    print(f"one SGD step, eager:        {eager * 1e3:7.3f} ms")
    if device.type == "cuda":
        graph = step_time(device, args.batch_size, True, n_steps)
        print(f"one SGD step, CUDA graph:   {graph * 1e3:7.3f} ms  ({eager / graph:.1f}x faster)")
    X, _ = load_mnist()
    for use_graph in ([False, True] if device.type == "cuda" else [False]):
        model = StackedAutoencoder(seed=0)
        sync(device)
        t = time.perf_counter()
        train_autoencoder(model, X, epochs=args.epochs, batch_size=args.batch_size, optimizer="sgd", lr=0.1,
                          device=device, progress=False, cuda_graph=use_graph)
        sync(device)
        dt = (time.perf_counter() - t) / args.epochs
        label = "CUDA graph" if use_graph else "eager"
        print(f"one epoch over 70,000 digits ({label}): {dt:6.2f} s  ({70_000 / dt:,.0f} digits/s)")


if __name__ == "__main__":
    main()
