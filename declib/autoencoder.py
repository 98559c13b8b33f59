r"""Autoencoders in PyTorch: a network trained to reproduce its input through a bottleneck.

An encoder :math:`z = g_\phi(x)` maps the d = 784 pixels to a short code :math:`z` (10 numbers), a decoder
:math:`\hat x = h_\theta(z)` maps it back, and training minimises the reconstruction error

.. math:: L = \frac{1}{n d} \sum_{i=1}^{n} \lVert x_i - h_\theta(g_\phi(\tilde x_i)) \rVert^2 ,

where :math:`\tilde x_i = x_i` for a plain autoencoder and a corrupted copy of :math:`x_i` for a *denoising*
autoencoder (Vincent et al., 2008), which must undo the corruption and so learns more robust features.

``Autoencoder(dims=[784, 10])`` is the 784→10→784 network; ``Autoencoder(dims=[784, 500, 500, 2000, 10])`` is DEC's
deep one: the decoder always mirrors the encoder.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._util import as_float_tensor, batched, check_int, check_seed, make_optimizer, minibatches, torch_generator
from .config import resolve_device

__all__ = ["Autoencoder", "dense_stack", "gaussian_noise", "masking_noise", "dropout_noise", "make_noise",
           "train_autoencoder", "one_cycle_lr", "reconstruction_mse", "encode", "psnr", "as_numpy_mlp", "decode_point",
           "denoise"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "identity": nn.Identity,
}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def dense_stack(dims: Sequence[int], activation: str, last_activation: str) -> nn.Sequential:
    """Linear layers dims[0]→dims[1]→…, ``activation`` after each but the last, ``last_activation`` after the last."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        act = last_activation if i == len(dims) - 2 else activation
        if act != "identity":
            layers.append(_activation(act))
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Encoder ``dims[0] → … → dims[-1]`` and the mirrored decoder ``dims[-1] → … → dims[0]``.

    ``activation`` follows every hidden layer; the code (embedding) gets ``embedding_activation`` and the
    reconstruction ``output_activation`` (DEC: ReLU hidden, both linear). ``init_std`` draws all weights from
    N(0, init_std²) with zero biases (the DEC paper's N(0, 0.01²)); ``None`` keeps PyTorch's default. ``seed``
    (default 0) makes the initial weights reproducible; ``None`` draws fresh ones.
    Notebook 03 §1.
    """

    def __init__(self, dims: Sequence[int] = (784, 10), activation: str = "relu",
                 embedding_activation: str = "identity", output_activation: str = "identity",
                 init_std: float | None = None, seed: int | None = 0):
        super().__init__()
        if len(dims) < 2 or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
            raise ValueError(f"dims: expected at least two positive integers [d, ..., code], got {list(dims)!r}")
        for name in (activation, embedding_activation, output_activation):
            _activation(name)
        self.dims = [int(d) for d in dims]
        self.config = dict(dims=self.dims, activation=activation, embedding_activation=embedding_activation,
                           output_activation=output_activation, init_std=init_std)
        with torch.random.fork_rng(devices=[]):  # the global generator is left as it was
            torch.default_generator.manual_seed(check_seed(seed))  # the CPU's only: no CUDA state is touched
            self.encoder = dense_stack(self.dims, activation, embedding_activation)
            self.decoder = dense_stack(self.dims[::-1], activation, output_activation)
            if init_std is not None:
                for layer in self.modules():
                    if isinstance(layer, nn.Linear):
                        nn.init.normal_(layer.weight, 0.0, init_std)
                        nn.init.zeros_(layer.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = g(x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction x̂ = h(z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ------------------------------------------------------------------------------------------------------ corruption
def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x̃ = clip(x + σ ε, 0, 1) with ε ~ N(0, I): pixels stay in [0, 1]. Notebook 03 §5."""
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + sigma * eps).clamp_(0.0, 1.0)


def masking_noise(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x̃ = x with a random ``fraction`` of the entries set to 0 (each independently). Notebook 03 §5."""
    return x * (_uniform(x, generator) >= fraction)


def dropout_noise(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dropout as corruption (DEC's): each entry zeroed with probability p, the rest scaled by 1/(1 − p).
    Notebook 03 §5."""
    return x * (_uniform(x, generator) >= p) / (1.0 - p)


_NOISES = {"gaussian": gaussian_noise, "masking": masking_noise, "dropout": dropout_noise}


def make_noise(kind: str, level: float) -> Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]:
    """A corruption ``noise(x, generator)``: ``kind`` in gaussian (level = σ), masking or dropout (level = p).
    Notebook 03 §5."""
    if kind not in _NOISES:
        raise ValueError(f"noise: expected one of {sorted(_NOISES)}, got {kind!r}")
    upper = math.inf if kind == "gaussian" else 1.0
    if not (isinstance(level, (int, float)) and 0.0 <= level < upper):
        raise ValueError(f"noise level for {kind}: expected a number in [0, {upper}), got {level!r}")
    fn = _NOISES[kind]
    return lambda x, generator=None: fn(x, level, generator)


# -------------------------------------------------------------------------------------------------------- training
def _as_data(X, device: torch.device, name: str = "X") -> torch.Tensor:
    return as_float_tensor(X, name, device, torch.float32)


def _total_steps(epochs, iterations, steps_per_epoch: int) -> int:
    if (epochs is None) == (iterations is None):
        raise ValueError("epochs, iterations: give exactly one of them")
    if epochs is not None:
        return check_int(epochs, "epochs", 1) * steps_per_epoch
    return check_int(iterations, "iterations", 1)


def _lr_policy(lr: float, lr_schedule: str | None, lr_decay_every: int | None, lr_decay: float,
               total_steps: int) -> Callable[[int], float]:
    """The learning rate at each step: constant, step decay (× ``lr_decay`` every ``lr_decay_every`` steps) or
    one-cycle."""
    if lr_schedule not in (None, "onecycle"):
        raise ValueError(f"lr_schedule: expected None or 'onecycle', got {lr_schedule!r}")
    if lr_schedule is not None and lr_decay_every:
        raise ValueError("lr_schedule, lr_decay_every: give at most one of them")
    if lr_schedule == "onecycle":
        return lambda step: one_cycle_lr(step, total_steps, lr)
    if lr_decay_every:
        every = check_int(lr_decay_every, "lr_decay_every", 1)
        return lambda step: lr * lr_decay ** (step // every)
    return lambda step: lr


class _CapturedStep:
    """One training step (forward, loss, backward, optimizer step) recorded once as a CUDA graph and replayed.

    Replaying a graph launches all of a step's kernels with one call, so the step costs GPU time only, not Python
    time. The batch is copied into static input buffers before each replay. The caller runs a few ordinary steps on
    a side stream first (CUDA's warm-up rule), so capturing itself trains nothing.
    """

    def __init__(self, model, opt, shape: torch.Size, device):
        self.x = torch.zeros(shape, device=device)
        self.x_in = torch.zeros_like(self.x)
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss = F.mse_loss(model(self.x_in), self.x)
            self.loss.backward()
            opt.step()

    def __call__(self, xb: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        self.x.copy_(xb)
        self.x_in.copy_(inp)
        self.graph.replay()
        return self.loss


def _on_side_stream(fn, device):
    """Run ``fn()`` on a fresh CUDA stream, ordered after and before the current one (the warm-up CUDA graphs need)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        out = fn()
    torch.cuda.current_stream(device).wait_stream(side)
    return out


_GRAPH_WARMUP = 3  # ordinary full-size steps before the first capture


def train_autoencoder(
    model: nn.Module,
    X,
    epochs: int | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    optimizer: str = "adam",
    noise: Callable | tuple[str, float] | None = None,
    X_val=None,
    device=None,
    seed: int | None = 0,
    progress: bool = True,
    iterations: int | None = None,
    momentum: float = 0.9,
    lr_decay_every: int | None = None,
    lr_decay: float = 0.1,
    cuda_graph: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    augment: Callable | None = None,
    precision: str = "fp32",
    lr_schedule: str | None = None,
) -> dict[str, list[float]]:
    """Minimise the mean squared reconstruction error of ``model`` on ``X`` by minibatch gradient descent.

    The data moves to the device once; every epoch draws a random permutation and takes batches as index slices
    (:func:`declib._util.minibatches`), so there is no per-sample Python work, and the loss is read back once per
    epoch (no per-batch synchronisation). Train for ``epochs`` passes or exactly ``iterations`` minibatch steps.
    ``noise`` (a callable ``noise(x, generator)`` or a ``(kind, level)`` pair for :func:`make_noise`) corrupts each
    batch's input, never its target. ``lr_decay_every`` multiplies the learning rate by ``lr_decay`` every that many
    steps. Notebook 03, §2 derives the loss and walks through this loop.

    ``cuda_graph=True`` (CUDA only) replays each full-size step as a captured CUDA graph: the same arithmetic, several
    times faster for small networks, whose eager steps are bound by Python and kernel launches. The learning rate is
    part of the captured step, so a change of rate captures the step again (a few times per run at most); a short
    last batch of an epoch runs eagerly. Where a graph cannot run (not CUDA, bf16, one-cycle) it warns and trains
    eagerly; ``history["graph_steps"]`` (present when ``cuda_graph=True``) counts the replayed steps per epoch.

    ``on_epoch_end(state)`` is called after every epoch with the step count, the history and the optimizer's and
    random generators' states; passing such a ``state`` back as ``resume`` (with the model's weights restored by the
    caller) continues the run exactly where it stopped.

    ``augment`` (a callable ``augment(x, generator)``, e.g. :func:`declib.augment.make_augment`) transforms each
    batch before anything else: the network reconstructs the augmented digit (input = target = augment(x), then
    ``noise`` corrupts the input). ``precision="bf16"`` runs the forward pass and the loss under bfloat16 autocast
    (weights, gradients and the optimizer stay float32; see :func:`declib.config.resolve_precision`).
    ``lr_schedule="onecycle"`` replaces the constant rate by the one-cycle policy of :func:`one_cycle_lr` with peak
    ``lr`` (Smith & Topin, 2019).

    Returns ``{"loss": [...], "val_loss": [...]}``, per epoch (``val_loss`` only with ``X_val``).
    """
    device = resolve_device(device)
    X = _as_data(X, device)
    Xv = _as_data(X_val, device, "X_val") if X_val is not None else None
    if hasattr(model, "dims") and model.dims[0] != X.shape[1]:
        raise ValueError(f"X: expected {model.dims[0]} features (the model's input width), got {X.shape[1]}")
    n = X.shape[0]
    batch_size = min(check_int(batch_size, "batch_size", 1), n)
    total_steps = _total_steps(epochs, iterations, math.ceil(n / batch_size))
    if isinstance(noise, tuple):
        noise = make_noise(*noise)
    lr_at = _lr_policy(lr, lr_schedule, lr_decay_every, lr_decay, total_steps)
    autocast = _autocast(precision, device)
    use_graph = cuda_graph and device.type == "cuda" and lr_schedule is None and precision == "fp32"
    if cuda_graph and not use_graph:
        import warnings

        warnings.warn(f"cuda_graph=True ignored: a CUDA graph needs device 'cuda' (got {device.type!r}), float32 "
                      "and a constant or step-decayed rate; training eagerly", stacklevel=2)
    model.to(device).train()
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum, capturable=use_graph)
    generator = torch_generator(seed, device)

    history: dict[str, list[float]] = {"loss": []}
    if Xv is not None:
        history["val_loss"] = []
    if cuda_graph:
        history["graph_steps"] = []
    step = 0
    scope = contextlib.ExitStack()
    if resume is not None:
        step, history = int(resume["step"]), {k: list(v) for k, v in resume["history"].items()}
        opt.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        # dropout layers draw from torch's global generator: continue its stream, and give the caller's back after
        scope.enter_context(torch.random.fork_rng(devices=[device] if device.type == "cuda" else []))
        torch.random.set_rng_state(resume["cpu_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)

    with scope:
        def eager_step(xb, inp):
            opt.zero_grad(set_to_none=not use_graph)
            with autocast:
                loss = F.mse_loss(model(inp).float(), xb)
            loss.backward()
            opt.step()
            return loss.detach()

        current_lr, captured, warm, graph_steps = lr, None, 0, 0
        epoch_sum, epoch_count = torch.zeros((), device=device), 0
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", disable=not progress, mininterval=1.0)
        for idx in minibatches(n, batch_size, generator, device):
            if step >= total_steps:
                break
            if lr_at(step) != current_lr:
                current_lr = lr_at(step)
                for group in opt.param_groups:
                    group["lr"] = current_lr
                captured = None  # a captured step has the old rate baked in: capture again
            xb = X[idx]
            if augment is not None:
                xb = augment(xb, generator)
            inp = noise(xb, generator) if noise is not None else xb
            if use_graph and len(xb) == batch_size:  # full-size batches: warm up, capture once, then replay
                if captured is None and warm >= _GRAPH_WARMUP:
                    captured = _CapturedStep(model, opt, xb.shape, device)
                if captured is not None:
                    loss = captured(xb, inp)
                    graph_steps += 1
                else:
                    loss = _on_side_stream(lambda: eager_step(xb, inp), device)
                    warm += 1
            else:
                loss = eager_step(xb, inp)
            epoch_sum += loss.detach() * len(xb)
            epoch_count += len(xb)
            step += 1
            bar.update(1)
            if epoch_count >= n or step == total_steps:
                history["loss"].append(float(epoch_sum) / epoch_count)  # one host sync per epoch
                epoch_sum, epoch_count = torch.zeros((), device=device), 0
                if cuda_graph:
                    history["graph_steps"].append(graph_steps)
                    graph_steps = 0
                if Xv is not None:
                    history["val_loss"].append(reconstruction_mse(model, Xv))
                    model.train()
                if on_epoch_end is not None:
                    on_epoch_end({"step": step, "history": history, "optimizer": opt.state_dict(),
                                  "generator": generator.get_state(), "cpu_rng": torch.random.get_rng_state(),
                                  "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None})
        bar.close()
    model.eval()
    return history


def one_cycle_lr(step: int, total_steps: int, peak: float, warmup: float = 0.3, div: float = 25.0,
                 final_div: float = 1e4) -> float:
    r"""The one-cycle learning rate at ``step`` of ``total_steps``: a cosine rise from peak/div to ``peak`` over the
    first ``warmup`` fraction of the steps, then a cosine fall to peak/(div·final_div) — PyTorch's ``OneCycleLR``
    defaults, without its momentum cycling. With :math:`c(a, b, t) = b + (a - b)(1 + \cos \pi t)/2`:
    :math:`\eta_s = c(\eta/25, \eta, s/s_w)` for :math:`s < s_w`, then :math:`c(\eta, \eta/25\cdot10^{-4},
    (s - s_w)/(S - s_w))`. Notebook 04 §6."""
    rise = max(1, int(warmup * total_steps))
    lo, end = peak / div, peak / div / final_div
    if step < rise:
        a, b, t = lo, peak, step / rise
    else:
        a, b, t = peak, end, min(1.0, (step - rise) / max(1, total_steps - rise))
    return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


def _autocast(precision: str, device: torch.device):
    """A context manager for the forward pass: bfloat16 autocast, or nothing for float32."""
    import contextlib

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision: expected 'fp32' or 'bf16', got {precision!r}")


# ----------------------------------------------------------------------------------------------------- evaluation
def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode(model: Autoencoder, X, batch_size: int = 8192) -> np.ndarray:
    """The codes z = g(x) of every row of ``X`` as a float32 NumPy array, computed where the model's weights are."""
    model.eval()
    return batched(model.encode, _as_data(X, _device_of(model)), batch_size=batch_size).cpu().numpy()


@torch.no_grad()
def reconstruction_mse(model: nn.Module, X, batch_size: int = 8192, inputs=None) -> float:
    """Mean squared error between ``X`` and the reconstruction of ``inputs`` (default ``X`` itself)."""
    X = _as_data(X, _device_of(model))
    inp = X if inputs is None else _as_data(inputs, X.device, "inputs")
    if inp.shape != X.shape:
        raise ValueError(f"inputs: expected the shape of X {tuple(X.shape)}, got {tuple(inp.shape)}")
    model.eval()
    row_errors = batched(lambda x_in, x: ((model(x_in) - x) ** 2).sum(dim=1, dtype=torch.float64), inp, X,
                         batch_size=batch_size)
    total = row_errors.sum()
    return float(total) / X.numel()


def psnr(clean, reconstructed) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]: 10 log10(1 / MSE)."""
    clean, reconstructed = np.asarray(clean, dtype=np.float64), np.asarray(reconstructed, dtype=np.float64)
    if clean.shape != reconstructed.shape:
        raise ValueError(f"clean and reconstructed: expected the same shape, got {clean.shape}, {reconstructed.shape}")
    mse = np.mean((clean - reconstructed) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def as_numpy_mlp(model: Autoencoder):
    """The same one-hidden-layer autoencoder (e.g. 784→10→784) as a :class:`declib.nn.MLP` with copied weights.

    Notebook 02's hand-written backprop then trains it: ``W1`` = encoder weight transposed, ``W2`` = decoder weight
    transposed, the code's activation as the hidden activation, the reconstruction's as the output, MSE loss.
    Notebook 03 §2.
    """
    from .nn import MLP

    if len(model.dims) != 2:
        raise ValueError(f"model: expected a one-hidden-layer autoencoder (dims [d, code]), got dims {model.dims}")
    cfg = model.config
    mlp = MLP([model.dims[0], model.dims[1], model.dims[0]], activation=cfg["embedding_activation"],
              output=cfg["output_activation"], loss="mse", dtype=np.float64)
    enc, dec = model.encoder[0], model.decoder[0]
    mlp.params.update(W1=enc.weight.detach().cpu().double().numpy().T.copy(),
                      b1=enc.bias.detach().cpu().double().numpy().copy(),
                      W2=dec.weight.detach().cpu().double().numpy().T.copy(),
                      b2=dec.bias.detach().cpu().double().numpy().copy())
    return mlp


@torch.no_grad()
def decode_point(model: Autoencoder, z) -> np.ndarray:
    """The decoder's image for one code ``z`` (length = code size), as a side × side array. Notebook 03 §4."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=_device_of(model)).reshape(1, -1)
    if z.shape[1] != model.dims[-1]:
        raise ValueError(f"z: expected {model.dims[-1]} numbers (the code size), got {z.shape[1]}")
    model.eval()
    img = model.decode(z).cpu().numpy().reshape(-1)
    side = int(round(np.sqrt(img.size)))
    return img.reshape(side, side) if side * side == img.size else img


@torch.no_grad()
def denoise(model: Autoencoder, X, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``X`` with clipped Gaussian noise of level σ (seeded) and reconstruct it: ``(noisy, denoised)``.
    Notebook 03 §5."""
    X = _as_data(X, _device_of(model))
    g = torch_generator(seed, X.device)
    noisy = gaussian_noise(X, sigma, g)
    model.eval()
    return noisy.cpu().numpy(), model(noisy).clamp(0, 1).cpu().numpy()
