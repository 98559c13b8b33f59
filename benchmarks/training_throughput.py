"""Training throughput of the deep autoencoder 784-500-500-2000-10-10-2000-500-500-784 (DEC's), all 70,000 digits.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--steps 30]

Everything is timed through the library's own path, ``declib.autoencoder.train_autoencoder`` (Adam):

* on the CPU, one training step for float32 and for bfloat16 autocast, at batch 256 and 1024, side by side, with the
  ratios to float32 at batch 256, and what one epoch over 70,000 digits costs in each;
* on a CUDA GPU, the same table plus the step replayed as a CUDA graph (``cuda_graph=True``, the library's
  ``_CapturedStep``; float32 with a constant rate, as the ``full`` schedule runs it).

A step is timed as the median over repeats of ``train_autoencoder(..., iterations=n)`` minus a run of one step, so
the set-up (moving the data, building the optimizer) does not count.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from declib.autoencoder import train_autoencoder
from declib.config import bf16_supported, resolve_device
from declib.stacked import StackedAutoencoder


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_seconds(device, X, batch_size, steps, precision, graph) -> float:
    model = StackedAutoencoder(seed=0)
    sync(device)
    t = time.perf_counter()
    train_autoencoder(model, X, iterations=steps, batch_size=batch_size, optimizer="adam", lr=1e-3, device=device,
                      progress=False, precision=precision, cuda_graph=graph)
    sync(device)
    return time.perf_counter() - t


def step_seconds(device, X, batch_size, steps, precision, graph=False, repeats=3) -> float:
    run_seconds(device, X, batch_size, 5, precision, graph)  # warm-up (kernels, oneDNN primitives)
    per_step = []
    for _ in range(repeats):
        long = run_seconds(device, X, batch_size, steps + 1, precision, graph)
        short = run_seconds(device, X, batch_size, 1, precision, graph)
        per_step.append((long - short) / steps)
    return statistics.median(per_step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=None, help="steps per timing (default: 30 on a CPU, 300 on a GPU)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    steps = args.steps or (300 if device.type == "cuda" else 30)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; native bfloat16: {bf16_supported(device)}")
    print("network 784-500-500-2000-10-2000-500-500-784, Adam, through declib.autoencoder.train_autoencoder\n")
    X = torch.rand(70_000, 784, device=device)
    rows = []
    for batch in (256, 1024):
        for precision in ("fp32", "bf16"):
            rows.append((batch, precision, "eager", step_seconds(device, X, batch, steps, precision)))
        if device.type == "cuda":
            rows.append((batch, "fp32", "CUDA graph", step_seconds(device, X, batch, steps, "fp32", graph=True)))
    base = rows[0][3]
    print(f"{'batch':>5s}  {'precision':9s}  {'mode':10s}  {'ms/step':>8s}  {'s/epoch':>8s}  {'epoch vs fp32@256':>18s}")
    for batch, precision, mode, sec in rows:
        epoch = sec * math.ceil(70_000 / batch)
        ratio = (base * math.ceil(70_000 / 256)) / epoch
        print(f"{batch:5d}  {precision:9s}  {mode:10s}  {sec * 1e3:8.2f}  {epoch:8.2f}  {ratio:17.2f}x")


if __name__ == "__main__":
    main()
