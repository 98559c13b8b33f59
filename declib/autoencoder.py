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

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
    makes the initial weights reproducible.
    """

    def __init__(self, dims: Sequence[int] = (784, 10), activation: str = "relu",
                 embedding_activation: str = "identity", output_activation: str = "identity",
                 init_std: float | None = None, seed: int | None = None):
        super().__init__()
        if len(dims) < 2 or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
            raise ValueError(f"dims: expected at least two positive integers [d, ..., code], got {list(dims)!r}")
        for name in (activation, embedding_activation, output_activation):
            _activation(name)
        self.dims = [int(d) for d in dims]
        self.config = dict(dims=self.dims, activation=activation, embedding_activation=embedding_activation,
                           output_activation=output_activation, init_std=init_std)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
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
    """x̃ = clip(x + σ ε, 0, 1) with ε ~ N(0, I): pixels stay in [0, 1]."""
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + sigma * eps).clamp_(0.0, 1.0)


def masking_noise(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x̃ = x with a random ``fraction`` of the entries set to 0 (each independently)."""
    return x * (_uniform(x, generator) >= fraction)


def dropout_noise(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dropout as corruption (DEC's): each entry zeroed with probability p, the rest scaled by 1/(1 − p)."""
    return x * (_uniform(x, generator) >= p) / (1.0 - p)


_NOISES = {"gaussian": gaussian_noise, "masking": masking_noise, "dropout": dropout_noise}


def make_noise(kind: str, level: float) -> Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]:
    """A corruption ``noise(x, generator)``: ``kind`` in gaussian (level = σ), masking or dropout (level = p)."""
    if kind not in _NOISES:
        raise ValueError(f"noise: expected one of {sorted(_NOISES)}, got {kind!r}")
    upper = math.inf if kind == "gaussian" else 1.0
    if not (isinstance(level, (int, float)) and 0.0 <= level < upper):
        raise ValueError(f"noise level for {kind}: expected a number in [0, {upper}), got {level!r}")
    fn = _NOISES[kind]
    return lambda x, generator=None: fn(x, level, generator)


# -------------------------------------------------------------------------------------------------------- training
def _as_data(X, device: torch.device, name: str = "X") -> torch.Tensor:
    t = X.detach() if isinstance(X, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(X))
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array (n_samples, n_features), got {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinity")
    return t


def _optimizer(name: str, params, lr: float, momentum: float, capturable: bool) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum). ``capturable`` keeps Adam's step counter on the device for CUDA graphs."""
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr: expected a learning rate > 0, got {lr!r}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, capturable=capturable)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {name!r}")


class _CapturedStep:
    """One training step (forward, loss, backward, optimizer step) recorded once as a CUDA graph and replayed.

    Replaying a graph launches all of a step's kernels with one call, so the step costs GPU time only, not Python
    time. The batch is copied into static input buffers before each replay.
    """

    def __init__(self, model, opt, batch_size: int, width: int, device, warmup_batches):
        self.x = torch.zeros(batch_size, width, device=device)
        self.x_in = torch.zeros_like(self.x)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        self.losses = []
        with torch.cuda.stream(side):  # warm-up on real batches (they are ordinary training steps)
            for xb, inp in warmup_batches:
                opt.zero_grad(set_to_none=True)
                loss = F.mse_loss(model(inp), xb)
                loss.backward()
                opt.step()
                self.losses.append(loss.detach())
                del loss  # keep no autograd graph alive into the capture
        torch.cuda.current_stream(device).wait_stream(side)
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

    The data moves to the device once; every epoch draws a random permutation and takes batches as index slices, so
    there is no per-sample Python work, and the loss is read back once per epoch (no per-batch synchronisation).
    Train for ``epochs`` passes or exactly ``iterations`` minibatch steps. ``noise`` (a callable
    ``noise(x, generator)`` or a ``(kind, level)`` pair for :func:`make_noise`) corrupts each batch's input, never
    its target. ``lr_decay_every`` multiplies the learning rate by ``lr_decay`` every that many steps.

    ``cuda_graph=True`` (CUDA only) replays each full-size step as a captured CUDA graph: the same arithmetic, several
    times faster for small networks, whose eager steps are bound by Python and kernel launches. The learning rate is
    part of the captured step, so a change of rate captures the step again (a few times per run at most).

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
    if (epochs is None) == (iterations is None):
        raise ValueError("epochs, iterations: give exactly one of them")
    device = resolve_device(device)
    X = _as_data(X, device)
    Xv = _as_data(X_val, device, "X_val") if X_val is not None else None
    if hasattr(model, "dims") and model.dims[0] != X.shape[1]:
        raise ValueError(f"X: expected {model.dims[0]} features (the model's input width), got {X.shape[1]}")
    n = X.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    batch_size = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = iterations if iterations is not None else epochs * steps_per_epoch
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"epochs/iterations: expected a positive integer, got "
                         f"{epochs if epochs is not None else iterations!r}")
    if isinstance(noise, tuple):
        noise = make_noise(*noise)
    if lr_schedule not in (None, "onecycle"):
        raise ValueError(f"lr_schedule: expected None or 'onecycle', got {lr_schedule!r}")
    if lr_schedule is not None and lr_decay_every:
        raise ValueError("lr_schedule, lr_decay_every: give at most one of them")
    autocast = _autocast(precision, device)
    use_graph = cuda_graph and device.type == "cuda" and lr_schedule is None and precision == "fp32"
    if cuda_graph and not use_graph:
        import warnings

        warnings.warn(f"cuda_graph=True ignored: a CUDA graph needs device 'cuda' (got {device.type!r}), float32 "
                      "and a constant or step-decayed rate; training eagerly", stacklevel=2)
    model.to(device).train()
    opt = _optimizer(optimizer, model.parameters(), lr, momentum, capturable=use_graph)
    generator = torch.Generator(device=device)
    generator.manual_seed(0 if seed is None else seed)

    def batches():
        while True:
            perm = torch.randperm(n, generator=generator, device=device)
            for s in range(0, n, batch_size):
                xb = X[perm[s : s + batch_size]]
                if augment is not None:
                    xb = augment(xb, generator)
                yield xb, (noise(xb, generator) if noise is not None else xb)

    def set_lr(value: float):
        nonlocal captured
        if value == current_lr[0]:
            return
        current_lr[0] = value
        for group in opt.param_groups:
            group["lr"] = value
        captured = None  # a captured step has the old rate baked in: capture again

    current_lr = [lr]
    history: dict[str, list[float]] = {"loss": []}
    if Xv is not None:
        history["val_loss"] = []
    step = 0
    if resume is not None:
        step, history = int(resume["step"]), {k: list(v) for k, v in resume["history"].items()}
        opt.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        torch.random.set_rng_state(resume["cpu_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
    stream = batches()
    captured = None
    epoch_sum, epoch_count = torch.zeros((), device=device), 0
    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", disable=not progress, mininterval=1.0)
    while step < total_steps:
        if lr_decay_every:
            set_lr(lr * lr_decay ** (step // lr_decay_every))
        elif lr_schedule == "onecycle":
            set_lr(one_cycle_lr(step, total_steps, lr))
        xb, inp = next(stream)
        if use_graph and captured is None and len(xb) == batch_size and total_steps - step > 3:
            warm = [(xb, inp)] + [next(stream) for _ in range(2)]
            warm = [(a, b) for a, b in warm if len(a) == batch_size]
            captured = _CapturedStep(model, opt, batch_size, X.shape[1], device, warm)
            for loss in captured.losses:
                epoch_sum += loss * batch_size
            epoch_count += batch_size * len(captured.losses)
            step += len(captured.losses)
            bar.update(len(captured.losses))
        else:
            if captured is not None and len(xb) == batch_size:
                loss = captured(xb, inp)
            else:
                opt.zero_grad(set_to_none=not use_graph)
                with autocast:
                    loss = F.mse_loss(model(inp).float(), xb)
                loss.backward()
                opt.step()
            epoch_sum += loss.detach() * len(xb)
            epoch_count += len(xb)
            step += 1
            bar.update(1)
        if epoch_count >= n or step == total_steps:
            history["loss"].append(float(epoch_sum) / epoch_count)  # one host sync per epoch
            epoch_sum, epoch_count = torch.zeros((), device=device), 0
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
    (s - s_w)/(S - s_w))`."""
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
@torch.no_grad()
def encode(model: Autoencoder, X, batch_size: int = 8192, device=None) -> np.ndarray:
    """The codes z = g(x) of every row of ``X`` as a float32 NumPy array."""
    device = resolve_device(device) if device is not None else next(model.parameters()).device
    X = _as_data(X, device)
    model.eval()
    return torch.cat([model.encode(X[s : s + batch_size]) for s in range(0, len(X), batch_size)]).cpu().numpy()


@torch.no_grad()
def reconstruction_mse(model: nn.Module, X, batch_size: int = 8192, inputs=None) -> float:
    """Mean squared error between ``X`` and the reconstruction of ``inputs`` (default ``X`` itself)."""
    device = next(model.parameters()).device
    X = _as_data(X, device)
    inp = X if inputs is None else _as_data(inputs, device, "inputs")
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    for s in range(0, len(X), batch_size):
        total += ((model(inp[s : s + batch_size]) - X[s : s + batch_size]) ** 2).sum(dtype=torch.float64)
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
    """The decoder's image for one code ``z`` (length = code size), as a side × side array."""
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device).reshape(1, -1)
    if z.shape[1] != model.dims[-1]:
        raise ValueError(f"z: expected {model.dims[-1]} numbers (the code size), got {z.shape[1]}")
    model.eval()
    img = model.decode(z).cpu().numpy().reshape(-1)
    side = int(round(np.sqrt(img.size)))
    return img.reshape(side, side) if side * side == img.size else img


@torch.no_grad()
def denoise(model: Autoencoder, X, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``X`` with clipped Gaussian noise of level σ (seeded) and reconstruct it: ``(noisy, denoised)``."""
    device = next(model.parameters()).device
    X = _as_data(X, device)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    noisy = gaussian_noise(X, sigma, g)
    model.eval()
    return noisy.cpu().numpy(), model(noisy).clamp(0, 1).cpu().numpy()
