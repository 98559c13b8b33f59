r"""Stacked autoencoders: greedy layer-wise pretraining of d-500-500-2000-10, then end-to-end fine-tuning.

DEC (Xie, Girshick & Farhadi, 2016) initialises its embedding this way. For each layer pair l = 1..4 in turn, a
one-hidden-layer *denoising* autoencoder is trained on the previous layer's codes :math:`h^{(l-1)}`:

.. math::

    \tilde h \sim \mathrm{Dropout}(h^{(l-1)}), \quad h = g_1(W_1 \tilde h + b_1), \quad
    \tilde h' \sim \mathrm{Dropout}(h), \quad \hat h^{(l-1)} = g_2(W_2 \tilde h' + b_2),

minimising :math:`\lVert h^{(l-1)} - \hat h^{(l-1)} \rVert^2`. Then its decoder is set aside and
:math:`h^{(l)} = g_1(W_1 h^{(l-1)} + b_1)` (no corruption) feeds the next pair. Finally all encoders and decoders
are unrolled into one deep autoencoder and fine-tuned end to end without corruption. :math:`g_1, g_2` are ReLU,
except :math:`g_2` of the first pair (it reconstructs the input) and :math:`g_1` of the last (the embedding keeps
full information), which are linear.

The layer autoencoders *share* their ``nn.Linear`` modules with the :class:`StackedAutoencoder`, so pretraining
writes straight into the deep network. Schedules are data (:data:`SCHEDULES`).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from . import cache
from .augment import make_augment
from ._util import batched, check_number
from .autoencoder import Autoencoder, _as_data, encode, train_autoencoder
from .config import resolve_device, resolve_precision

__all__ = ["Schedule", "SCHEDULES", "cpu_levers", "StackedAutoencoder", "pretrain_layerwise", "finetune",
           "pretrained_autoencoder", "fold_input_scale"]


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How long and how to train: ``layer_iters`` steps per layer pair, then ``finetune_iters`` end to end.

    Optimisers are ``"sgd"`` (momentum 0.9) or ``"adam"``; ``lr_decay_every`` multiplies the learning rate by 0.1
    every that many steps of a stage (``None``: constant). ``init_std`` draws the weights from N(0, init_std²);
    ``None`` keeps PyTorch's default U(−1/√fan_in, 1/√fan_in). ``input_scale`` s trains on s·x instead of x (the
    DEC code feeds grey levels × 0.02, i.e. s = 5.1 for pixels in [0, 1]); afterwards s is folded into the first
    and last layers (:func:`fold_input_scale`), so the network still takes and returns pixels in [0, 1] and its
    embedding is unchanged. ``input_dropout`` is the corruption of the pixels themselves in layer pair 1 (the DEC
    code uses 0: it drops only that pair's hidden units).

    The CPU levers (all measured in notebook 04): ``precision="bf16"`` trains under bfloat16 autocast where the
    processor supports it (else float32, with a warning); ``lr_schedule="onecycle"`` replaces the constant rate by a
    one-cycle schedule peaking at ``lr``; ``augment=(s, φ)`` trains on digits shifted by up to s pixels and rotated by
    up to φ degrees, drawn afresh for every batch (:mod:`declib.augment`; in layer-wise pretraining only the first
    pair sees images, so only it is augmented). ``noise`` corrupts the input during fine-tuning (a denoising
    autoencoder end to end, e.g. ``("masking", 0.2)``).
    """

    name: str
    optimizer: str
    lr: float
    batch_size: int
    layer_iters: int
    finetune_iters: int
    lr_decay_every: int | None
    dropout: float = 0.2
    init_std: float | None = None
    finetune_optimizer: str | None = None  # defaults to optimizer
    finetune_lr: float | None = None  # defaults to lr
    input_scale: float = 1.0  # pixels are multiplied by this while training (the paper: 0.02 per grey level)
    input_dropout: float | None = None  # dropout on the pixels in layer pair 1 (None: the same as ``dropout``)
    precision: str = "fp32"  # "bf16": bfloat16 autocast where supported
    lr_schedule: str | None = None  # "onecycle"
    augment: tuple[int, float] | None = None  # (max shift in pixels, max rotation in degrees)
    noise: tuple[str, float] | None = None  # corruption of the input during fine-tuning, e.g. ("masking", 0.2)

    def key_fields(self) -> dict:
        """The fields that name the trained weights in the cache. Fields still at their defaults are left out, so
        adding a field with a default keeps existing cache entries valid."""
        d = asdict(self)
        for name in ("input_scale", "input_dropout", "precision", "lr_schedule", "augment", "noise"):
            if d[name] == Schedule.__dataclass_fields__[name].default:
                del d[name]
        return d


SCHEDULES: dict[str, Schedule] = {
    # Xie et al. (2016), section 4.3: minibatch 256, SGD lr 0.1 divided by 10 every 20,000 iterations, 50,000
    # iterations per layer, 100,000 for fine-tuning, weights from N(0, 0.01²), dropout 0.2, momentum 0.9; and, as
    # in the authors' code (github.com/piiswrong/dec): pixels × 0.02 per grey level, no dropout on the pixels in
    # layer pair 1, Caffe's Euclidean loss ½·mean((x̂ − x)²) — so its lr 0.1 is lr 0.05 on our mean squared error.
    "paper": Schedule(name="paper", optimizer="sgd", lr=0.05, batch_size=256, layer_iters=50_000,
                      finetune_iters=100_000, lr_decay_every=20_000, dropout=0.2, init_std=0.01,
                      input_scale=255 * 0.02, input_dropout=0.0),
    # declib's full-profile schedule: short greedy stages, then fine-tuning with a large SGD step (lr 1.0, momentum
    # 0.9, 300 epochs of 70,000 digits, as the best-known reimplementation's end-to-end pretraining).
    "full": Schedule(name="full", optimizer="sgd", lr=0.1, batch_size=256, layer_iters=5_000, finetune_iters=82_000,
                     lr_decay_every=None, dropout=0.2, init_std=None, finetune_optimizer="sgd", finetune_lr=1.0),
    # declib's CPU schedule (the default without a CUDA GPU): end to end on digits shifted by up to 2 pixels and
    # rotated by up to 10°, Adam with a one-cycle rate peaking at 1e-3, batches of 256, bfloat16 autocast; 50 epochs
    # of 70,000 digits (13,700 steps). Layer-wise (notebook 04's comparison): 2,000 steps per layer pair.
    # How each choice was made: cpu_levers() and the table in notebook 04.
    "cpu": Schedule(name="cpu", optimizer="adam", lr=1e-3, batch_size=256, layer_iters=2_000, finetune_iters=13_700,
                    lr_decay_every=None, dropout=0.2, init_std=None, precision="bf16", lr_schedule="onecycle",
                    augment=(2, 10.0)),
    # CI's: the CPU schedule on the fast profile's subset, 150 epochs of 10,000 digits.
    "fast": Schedule(name="fast", optimizer="adam", lr=1e-3, batch_size=256, layer_iters=300, finetune_iters=6_000,
                     lr_decay_every=None, dropout=0.2, init_std=None, precision="bf16", lr_schedule="onecycle",
                     augment=(2, 10.0)),
}


def cpu_levers() -> dict[str, Schedule]:
    """The schedules behind the CPU schedule's choices (``python -m declib levers``; the table is in notebook 04 and
    the README). The search started from batches of 1024 with a peak rate of 2e-3 (50 epochs, 3,450 steps): each
    variant changes one choice of that starting point; the last is the ``cpu`` schedule itself, which differs from
    the start only in its batch size and rate."""
    start = replace(SCHEDULES["cpu"], name="cpu", batch_size=1024, lr=2e-3, layer_iters=600, finetune_iters=3_450)
    epochs = start.finetune_iters / math.ceil(70_000 / start.batch_size)
    return {
        "start: batch 1024, peak lr 2e-3": start,
        "no augmentation": replace(start, name="cpu-noaug", augment=None),
        "shifts only (±2 px)": replace(start, name="cpu-shift", augment=(2, 0.0)),
        "masking noise 0.2, no augmentation": replace(start, name="cpu-mask", augment=None, noise=("masking", 0.2)),
        "float32 (no bf16 autocast)": replace(start, name="cpu-fp32", precision="fp32"),
        "constant lr 1e-3 (no one-cycle)": replace(start, name="cpu-const", lr=1e-3, lr_schedule=None),
        "25 epochs": replace(start, name="cpu-25ep", finetune_iters=int(start.finetune_iters * 25 / epochs)),
        "100 epochs": replace(start, name="cpu-100ep", finetune_iters=int(start.finetune_iters * 100 / epochs)),
        "batch 256, peak lr 1e-3 (the cpu schedule)": SCHEDULES["cpu"],
    }


class StackedAutoencoder(Autoencoder):
    """DEC's deep autoencoder ``dims = [d, 500, 500, 2000, 10]``: ReLU hidden layers, linear embedding and output.

    It is an :class:`~declib.autoencoder.Autoencoder` (the same class the 784→10→784 notebook uses) whose layer pairs
    can also be trained one at a time (:meth:`layer_autoencoder`).
    Notebook 04 §1.
    """

    def __init__(self, dims=(784, 500, 500, 2000, 10), init_std: float | None = None, seed: int | None = 0):
        super().__init__(dims, activation="relu", embedding_activation="identity", output_activation="identity",
                         init_std=init_std, seed=seed)

    def linears(self) -> tuple[list[nn.Linear], list[nn.Linear]]:
        """The encoder's linear layers in order, and the decoder's matched to them (``dec[l]`` undoes ``enc[l]``)."""
        enc = [m for m in self.encoder if isinstance(m, nn.Linear)]
        dec = [m for m in self.decoder if isinstance(m, nn.Linear)][::-1]
        return enc, dec

    def layer_autoencoder(self, l: int, dropout: float, input_dropout: float | None = None) -> nn.Sequential:
        """The denoising autoencoder of layer pair ``l`` (0-based), sharing its weights with this network.

        ``dropout`` corrupts the pair's input and its hidden units; ``input_dropout``, when given, replaces it for
        the input."""
        enc, dec = self.linears()
        if not 0 <= l < len(enc):
            raise ValueError(f"l: expected a layer pair in [0, {len(enc) - 1}], got {l}")
        last, first = l == len(enc) - 1, l == 0
        return nn.Sequential(
            nn.Dropout(dropout if input_dropout is None else input_dropout), enc[l],
            nn.Identity() if last else nn.ReLU(),
            nn.Dropout(dropout), dec[l], nn.Identity() if first else nn.ReLU(),
        )

    @torch.no_grad()
    def encode_prefix(self, X: torch.Tensor, n_layers: int, batch_size: int = 8192) -> torch.Tensor:
        """h^(n_layers): the input pushed through the first ``n_layers`` encoder layers (no corruption)."""
        enc, _ = self.linears()

        def prefix(h):
            for l in range(n_layers):
                h = enc[l](h)
                if l < len(enc) - 1:
                    h = torch.relu(h)
            return h

        return batched(prefix, X, batch_size=batch_size)


@contextmanager
def _seeded_global_rng(seed: int, device: torch.device):
    """Seed torch's global generator (which ``nn.Dropout`` draws from) for a block, and give the caller's state back
    afterwards: declib takes explicit seeds and never leaves the global generators changed."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed would also reseed CUDA devices not forked here
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def pretrain_layerwise(model: StackedAutoencoder, X, schedule: Schedule, device=None, seed: int = 0,
                       progress: bool = True, cuda_graph: bool = False, start_layer: int = 0,
                       on_layer_end=None) -> list[dict]:
    """Greedy layer-wise pretraining: each layer pair a denoising autoencoder (dropout ``schedule.dropout``) on the
    codes of the layers below it. Returns each layer's training history. ``start_layer`` skips the layers already
    trained (for resuming); ``on_layer_end(l)`` is called after each layer.
    Notebook 04 §1 and §2.
    """
    device = resolve_device(device)
    model.to(device)
    X = _as_data(X, device)
    histories = []
    n_pairs = len(model.dims) - 1
    for l in range(start_layer, n_pairs):
        codes = model.encode_prefix(X, l)
        layer = model.layer_autoencoder(l, schedule.dropout, schedule.input_dropout if l == 0 else None)
        with _seeded_global_rng(seed * 1000 + l, device):  # dropout masks come from the global generator
            h = train_autoencoder(layer, codes, iterations=schedule.layer_iters, batch_size=schedule.batch_size,
                                  lr=schedule.lr, optimizer=schedule.optimizer,
                                  lr_decay_every=schedule.lr_decay_every, device=device, seed=seed * 1000 + l,
                                  progress=progress, cuda_graph=cuda_graph,
                                  precision=resolve_precision(schedule.precision, device),
                                  lr_schedule=schedule.lr_schedule,
                                  augment=make_augment(*schedule.augment) if schedule.augment and l == 0 else None)
        histories.append(h)
        del codes
        if on_layer_end is not None:
            on_layer_end(l, h)
    model.eval()
    return histories


def finetune(model: StackedAutoencoder, X, schedule: Schedule, device=None, seed: int = 0, progress: bool = True,
             cuda_graph: bool = False, X_val=None, on_epoch_end=None, resume: dict | None = None) -> dict:
    """End-to-end fine-tuning of the unrolled network, without corruption (as in the paper). Notebook 04 §2."""
    with _seeded_global_rng(seed, resolve_device(device)):
        return train_autoencoder(model, X, iterations=schedule.finetune_iters, batch_size=schedule.batch_size,
                                 lr=schedule.finetune_lr or schedule.lr,
                                 optimizer=schedule.finetune_optimizer or schedule.optimizer,
                                 lr_decay_every=schedule.lr_decay_every, device=device, seed=seed + 7919,
                                 progress=progress, cuda_graph=cuda_graph, X_val=X_val, on_epoch_end=on_epoch_end,
                                 resume=resume, precision=resolve_precision(schedule.precision, device),
                                 lr_schedule=schedule.lr_schedule, noise=schedule.noise,
                                 augment=make_augment(*schedule.augment) if schedule.augment else None)


@torch.no_grad()
def fold_input_scale(model: StackedAutoencoder, scale: float) -> StackedAutoencoder:
    r"""Fold an input scale s into the weights, in place: a network trained on s·x becomes one on x.

    With :math:`W_1 \leftarrow s W_1` the first layer computes :math:`(s W_1) x = W_1 (s x)`, so every code and
    the embedding are unchanged; with :math:`(W_L, b_L) \leftarrow (W_L, b_L) / s` the linear reconstruction comes
    back in pixel units: the new network's output is the old one's divided by s.
    """
    check_number(scale, "scale", 0.0, low_open=True)
    enc, dec = model.linears()
    enc[0].weight.mul_(scale)
    dec[0].weight.div_(scale)
    dec[0].bias.div_(scale)
    return model


def pretrained_autoencoder(X, schedule: str | Schedule = "full", seed: int = 0, dims=(784, 500, 500, 2000, 10),
                           device=None, use_cache: bool = True, progress: bool = True, cuda_graph: bool | None = None,
                           layerwise: bool = True, checkpoint_seconds: float = 60.0
                           ) -> tuple[StackedAutoencoder, dict]:
    """A stacked autoencoder pretrained layer-wise and fine-tuned on ``X``, from the cache when it is there.

    The cache key is made of the architecture, the schedule, the seed, ``layerwise`` and a fingerprint of ``X``.
    Progress is saved after every pretrained layer and, during fine-tuning, after an epoch at most every
    ``checkpoint_seconds``, so an interrupted run resumes from the last saved epoch (or, in the layer-wise stage, at
    the next layer pair). ``cuda_graph`` defaults to True on CUDA. ``layerwise=False`` skips the greedy stage (end-to-end
    training only, for comparison). Returns ``(model, info)`` with the histories, timings and whether the weights
    came from the cache. Losses in the histories are in training units: with an ``input_scale`` s ≠ 1 the squared
    errors are s² times those on pixels in [0, 1].
    Notebook 04 §2.
    """
    schedule = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    device = resolve_device(device)
    precision = resolve_precision(schedule.precision, device)
    if cuda_graph is None:  # a graph pays off for a constant rate in float32 (a per-step rate would re-capture it)
        cuda_graph = device.type == "cuda" and schedule.lr_schedule is None and precision == "fp32"
    extra = {} if schedule.precision == "fp32" else {"precision": precision}  # what actually ran
    key = cache.make_key(kind="stacked-autoencoder", dims=list(dims), schedule=schedule.key_fields(), seed=seed,
                         layerwise=layerwise, data=cache.data_fingerprint(X), **extra)
    path = cache.weights_dir() / f"sae-{schedule.name}-s{seed}-{key}.pt"
    model = StackedAutoencoder(dims, init_std=schedule.init_std, seed=seed)
    state = cache.load_checkpoint(path, key) if use_cache else None
    info = {"key": key, "path": str(path), "from_cache": False, "layer_histories": [], "finetune_history": None,
            "seconds": {}, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
            "precision": precision,
            "snapshot_idx": None, "snapshot_after_layerwise": None}
    if state is not None:
        model.load_state_dict(state["model"])
        info.update(state["info"])
        if state["stage"] == "done":
            info["from_cache"] = True
            return model.to(device).eval(), info

    def save(stage, extra=None):
        if use_cache:
            cache.save_checkpoint(path, {"key": key, "stage": stage, "model": model.state_dict(), "info": info,
                                         **(extra or {})})

    Xt = _as_data(X, device)  # the training data: pixels × input_scale
    if schedule.input_scale != 1.0:
        Xt = Xt * schedule.input_scale
    done_layers = state["layers_done"] if state is not None and state["stage"] == "layers" else 0
    resume = state.get("resume") if state is not None and state["stage"] == "finetune" else None
    if state is None or state["stage"] == "layers":
        if layerwise:
            t = [time.perf_counter()]

            def layer_done(l, h):
                info["layer_histories"].append(h)
                info["seconds"][f"layer{l + 1}"] = time.perf_counter() - t[0]
                t[0] = time.perf_counter()
                save("layers", {"layers_done": l + 1})

            pretrain_layerwise(model, Xt, schedule, device, seed, progress, cuda_graph, done_layers, layer_done)
            # a small snapshot of the embedding before fine-tuning, for the notebooks' before/after figures
            idx = np.random.default_rng(0).choice(len(X), size=min(3000, len(X)), replace=False)
            info["snapshot_idx"] = idx.tolist()
            sample = Xt[torch.from_numpy(idx).to(device)]
            info["snapshot_after_layerwise"] = encode(model, sample).tolist()
        save("finetune", {"resume": None})
    t = time.perf_counter()
    last_save = [time.perf_counter()]

    def epoch_done(state_):
        if time.perf_counter() - last_save[0] >= checkpoint_seconds:
            save("finetune", {"resume": state_})
            last_save[0] = time.perf_counter()

    info["finetune_history"] = finetune(model, Xt, schedule, device, seed, progress, cuda_graph,
                                        on_epoch_end=epoch_done if use_cache else None, resume=resume)
    info["seconds"]["finetune"] = time.perf_counter() - t
    if schedule.input_scale != 1.0:
        fold_input_scale(model, schedule.input_scale)  # from here on it takes and returns pixels in [0, 1]
    save("done")
    return model.eval(), info

