r"""Backpropagation by hand, in NumPy: activations, losses, a multilayer perceptron, gradient checks, optimisers.

Notation (the lecture's). Layer :math:`l` maps its input :math:`h^{(l-1)}` (with :math:`h^{(0)} = x`) to

.. math:: z^{(l)} = h^{(l-1)} W^{(l)} + b^{(l)}, \qquad h^{(l)} = f_l(z^{(l)}),

and the last layer's output is :math:`\hat y`. For the two-layer network of the lecture,
:math:`h_k = f(\sum_j W^{(1)}_{jk} x_j)` and :math:`\hat y_t = \sum_k h_k W^{(2)}_{kt}`. The chain rule gives

.. math::

    \frac{\partial L}{\partial W^{(2)}_{kt}} = \frac{\partial L}{\partial \hat y_t} h_k, \qquad
    \frac{\partial L}{\partial W^{(1)}_{jk}} = \sum_t \frac{\partial L}{\partial \hat y_t}
        \frac{\partial \hat y_t}{\partial h_k} \frac{\partial h_k}{\partial W^{(1)}_{jk}}
      = \sum_t \frac{\partial L}{\partial \hat y_t} W^{(2)}_{kt} \, f'(z_k) \, x_j ,

and in matrix form, for a batch stacked in rows, with :math:`\delta^{(l)} = \partial L / \partial z^{(l)}`:

.. math::

    \frac{\partial L}{\partial W^{(l)}} = {h^{(l-1)}}^\top \delta^{(l)}, \quad
    \frac{\partial L}{\partial b^{(l)}} = \mathbf{1}^\top \delta^{(l)}, \quad
    \delta^{(l-1)} = \big(\delta^{(l)} {W^{(l)}}^\top\big) \odot f'_{l-1}(z^{(l-1)}).

Losses average over the batch, so the gradients above carry a factor :math:`1/n`.
Everything is float64 by default; pass ``dtype=np.float32`` for speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._util import ParamsMixin, as_float_array, batched, check_choice, check_int, make_optimizer, numpy_rng

__all__ = [
    "Activation", "ACTIVATIONS", "get_activation", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "identity",
    "Loss", "LOSSES", "get_loss", "MLP", "SGD", "Adam", "gradient_check", "relative_error", "torch_gradients",
    "gradient_descent",
]


# ---------------------------------------------------------------------------------------------------- activations
def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{-z}), computed without overflow: e^{-|z|} never exceeds 1."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(z: np.ndarray) -> np.ndarray:
    """tanh(z) = (e^z − e^{-z}) / (e^z + e^{-z})."""
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    """ReLU(z) = max(0, z)."""
    return np.maximum(z, 0)


def leaky_relu(z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """z for z > 0, else slope · z."""
    return np.where(z > 0, z, slope * z)


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax(z)_t = e^{z_t} / Σ_t' e^{z_t'} along the last axis, shifted by max(z) so nothing overflows."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def identity(z: np.ndarray) -> np.ndarray:
    """f(z) = z (a linear output)."""
    return z


@dataclass(frozen=True)
class Activation:
    """An activation f with its derivative.

    ``forward(z)`` is f(z); ``derivative(z, a)`` is f'(z) elementwise (``a`` = f(z), reused where cheaper);
    ``backward(z, a, grad_a)`` is ∂L/∂z given ∂L/∂a, i.e. ``grad_a * f'(z)`` for elementwise activations and the
    Jacobian-vector product for softmax, whose output components all depend on all inputs.
    Notebook 02 §2.
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray] | None

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        if self.name == "softmax":  # J = diag(s) − s sᵀ, so Jᵀ g = s ⊙ (g − ⟨g, s⟩)
            return a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True))
        return grad_a * self.derivative(z, a)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)


def _leaky(slope: float) -> Activation:
    return Activation("leaky_relu", lambda z: leaky_relu(z, slope),
                      lambda z, a: np.where(z > 0, 1.0, slope).astype(z.dtype))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, lambda z, a: a * (1 - a)),
    "tanh": Activation("tanh", tanh, lambda z, a: 1 - a * a),
    "relu": Activation("relu", relu, lambda z, a: (z > 0).astype(z.dtype)),
    "leaky_relu": _leaky(0.01),
    "softmax": Activation("softmax", softmax, None),
    "identity": Activation("identity", identity, lambda z, a: np.ones_like(z)),
}


def get_activation(name: str | Activation, slope: float = 0.01) -> Activation:
    """The activation called ``name`` (one of :data:`ACTIVATIONS`); ``slope`` is leaky ReLU's. Notebook 02 §2."""
    if isinstance(name, Activation):
        return name
    if name == "leaky_relu" and slope != 0.01:
        return _leaky(slope)
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------------------------------------- losses
_EPS = 1e-12  # keeps log() away from 0


@dataclass(frozen=True)
class Loss:
    r"""A loss :math:`L(\hat y, y)`, averaged over the batch, with its gradient :math:`\partial L / \partial \hat y`.
    Notebook 02 §3."""

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def __call__(self, y_hat: np.ndarray, y: np.ndarray) -> float:
        return self.value(y_hat, y)


def _clip(p):
    return np.clip(p, _EPS, 1 - _EPS)


LOSSES: dict[str, Loss] = {
    # mean over all n·T entries, as torch's MSELoss / L1Loss / BCELoss
    "mse": Loss("mse", lambda p, y: float(np.mean((p - y) ** 2)), lambda p, y: 2 * (p - y) / p.size),
    "mae": Loss("mae", lambda p, y: float(np.mean(np.abs(p - y))), lambda p, y: np.sign(p - y) / p.size),
    "bce": Loss("bce", lambda p, y: float(-np.mean(y * np.log(_clip(p)) + (1 - y) * np.log(_clip(1 - p)))),
                lambda p, y: (_clip(p) - y) / (_clip(p) * (1 - _clip(p))) / p.size),
    # −(1/n) Σ_i Σ_t y_it log ŷ_it: a sum over the classes, a mean over the batch
    "cross_entropy": Loss("cross_entropy", lambda p, y: float(-np.sum(y * np.log(_clip(p))) / len(p)),
                          lambda p, y: -y / _clip(p) / len(p)),
}


def get_loss(name: str | Loss) -> Loss:
    """The loss called ``name`` (one of :data:`LOSSES`). Notebook 02 §3."""
    if isinstance(name, Loss):
        return name
    if name not in LOSSES:
        raise ValueError(f"loss: expected one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


# (output activation, loss) pairs whose chain rule collapses to δ = (ŷ − y) / n, computed from z without log(0)
_FUSED = {("softmax", "cross_entropy"), ("sigmoid", "bce")}


def _fused_loss(act: str, z: np.ndarray, y: np.ndarray) -> float:
    if act == "softmax":  # −Σ y log softmax(z), with log softmax(z) = z − max − log Σ e^{z − max}
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.sum(y * log_p) / len(z))
    # sigmoid + BCE: log σ(z) = −log(1 + e^{−z}) = −logaddexp(0, −z)
    return float(np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))


# ----------------------------------------------------------------------------------------------------------- MLP
class MLP(ParamsMixin):
    """A fully connected network ``sizes = [d, h_1, ..., T]`` with biases, trained by hand-written backprop.

    Parameters are in ``params`` under the lecture's names ``W1, b1, W2, b2, ...`` (``W1`` has shape d × h_1),
    initialised when the network is built, so ``forward``/``backward`` work before any training (notebook 02, §4).
    ``forward`` caches what ``backward`` needs (each layer's input h, pre-activation z and output); ``backward``
    returns the gradients under the same names. With ``output="softmax", loss="cross_entropy"`` (or sigmoid + BCE)
    the output layer's δ is the simple ŷ − y (divided by n).

    ``init``: ``"he"`` (N(0, 2/fan_in), for ReLU) or ``"xavier"`` (N(0, 2/(fan_in + fan_out)), for tanh/sigmoid).
    Training hyperparameters for :meth:`fit`: ``epochs``, ``batch_size``, ``lr``, ``optimizer`` ("sgd" with
    ``momentum``, or "adam"), ``seed`` (the initial weights and the order of the minibatches) and ``progress``.
    Every argument is stored unchanged (``get_params``/``set_params``/``sklearn.base.clone`` work; a clone is a
    freshly initialised network); the objects they name are ``f_hidden``, ``f_out`` (activations) and ``loss_fn``.
    Fitted: ``history_`` (per epoch: ``loss``, ``accuracy``, and ``val_accuracy`` with validation data).
    """

    def __init__(self, sizes: list[int], activation: str = "relu", output: str = "softmax",
                 loss: str = "cross_entropy", init: str = "he", seed=0, dtype=np.float64, slope: float = 0.01, *,
                 epochs: int = 10, batch_size: int = 128, lr: float = 0.1, optimizer: str = "sgd",
                 momentum: float = 0.9, progress: bool = True):
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(f"sizes: expected at least two positive integers [d, ..., T], got {sizes!r}")
        check_choice(init, "init", ("he", "xavier"))
        self.sizes, self.activation, self.output, self.loss, self.init = sizes, activation, output, loss, init
        self.seed, self.dtype, self.slope = seed, dtype, slope
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.optimizer, self.momentum = optimizer, momentum
        self.progress = progress
        self._sizes = [int(s) for s in sizes]
        self.f_hidden = get_activation(activation, slope)
        self.f_out = get_activation(output, slope)
        self.loss_fn = get_loss(loss)
        self._dtype = np.dtype(dtype)
        rng = numpy_rng(seed)  # a Generator is used as it is; an integer seeds a fresh one
        self.params: dict[str, np.ndarray] = {}
        for l, (fan_in, fan_out) in enumerate(zip(self._sizes[:-1], self._sizes[1:]), start=1):
            std = np.sqrt(2.0 / fan_in) if init == "he" else np.sqrt(2.0 / (fan_in + fan_out))
            self.params[f"W{l}"] = (rng.standard_normal((fan_in, fan_out)) * std).astype(self._dtype)
            self.params[f"b{l}"] = np.zeros(fan_out, dtype=self._dtype)
        self._cache: list | None = None

    @property
    def n_layers(self) -> int:
        return len(self._sizes) - 1

    def _check_x(self, X) -> np.ndarray:
        return as_float_array(X, "X", self._dtype, n_features=self._sizes[0])

    def forward(self, X) -> np.ndarray:
        """ŷ for a batch ``X`` (n × d); caches (h^(l−1), z^(l), h^(l)) of every layer for :meth:`backward`."""
        h = self._check_x(X)
        self._cache = []
        for l in range(1, self.n_layers + 1):
            z = h @ self.params[f"W{l}"] + self.params[f"b{l}"]  # z^(l) = h^(l−1) W^(l) + b^(l)
            f = self.f_out if l == self.n_layers else self.f_hidden
            a = f(z)  # h^(l) = f(z^(l)); the last one is ŷ
            self._cache.append((h, z, a))
            h = a
        return h

    __call__ = forward

    def _targets(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        T = self._sizes[-1]
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):  # class indices → one-hot
            if len(y) != n or y.min() < 0 or y.max() >= T:
                raise ValueError(f"y: expected {n} class indices in [0, {T}), got shape {y.shape}")
            return np.eye(T, dtype=self._dtype)[y]
        if y.shape != (n, T):
            raise ValueError(f"y: expected shape ({n}, {T}) (or {n} class indices), got {y.shape}")
        return y.astype(self._dtype)

    def _fused(self) -> bool:
        return (self.f_out.name, self.loss_fn.name) in _FUSED

    def compute_loss(self, X, y) -> float:
        """L(ŷ(X), y): one forward pass, then the loss (computed stably from z for the fused pairs)."""
        y_hat = self.forward(X)
        Y = self._targets(y, len(y_hat))
        if self._fused():
            return _fused_loss(self.f_out.name, self._cache[-1][1], Y)
        return self.loss_fn(y_hat, Y)

    def backward(self, y) -> dict[str, np.ndarray]:
        """The gradients ∂L/∂W^(l), ∂L/∂b^(l) for the batch of the last :meth:`forward`, by the chain rule."""
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() pass first")
        _, z_out, y_hat = self._cache[-1]
        Y = self._targets(y, len(y_hat))
        if self._fused():
            # softmax + CE: ∂L/∂z = (ŷ − y)/n; sigmoid + BCE (a mean over all n·T entries): (ŷ − y)/(nT)
            delta = (y_hat - Y) / (len(y_hat) if self.f_out.name == "softmax" else y_hat.size)
        else:
            delta = self.f_out.backward(z_out, y_hat, self.loss_fn.grad(y_hat, Y))  # ∂L/∂ŷ ⊙ f'(z)
        grads = {}
        for l in range(self.n_layers, 0, -1):
            h_prev, _, _ = self._cache[l - 1]
            grads[f"W{l}"] = h_prev.T @ delta  # ∂L/∂W^(l) = h^(l−1)ᵀ δ^(l)
            grads[f"b{l}"] = delta.sum(axis=0)  # ∂L/∂b^(l) = 1ᵀ δ^(l)
            if l > 1:
                _, z_prev, a_prev = self._cache[l - 2]
                delta = self.f_hidden.backward(z_prev, a_prev, delta @ self.params[f"W{l}"].T)  # δ^(l−1)
        return grads

    def predict_proba(self, X, batch_size: int = 8192) -> np.ndarray:
        """ŷ for ``X``, in batches (no cache kept)."""
        X = self._check_x(X)
        out = batched(self.forward, X, batch_size=batch_size)
        self._cache = None
        return out

    def predict(self, X) -> np.ndarray:
        """The class with the largest output for each row of ``X``."""
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y) -> float:
        """Classification accuracy on (X, y) with integer labels y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def fit(self, X, y, X_val=None, y_val=None) -> "MLP":
        """Minibatch training for ``epochs`` epochs: each visits the shuffled data once in batches of ``batch_size``.

        Records ``history_``: mean training loss and accuracy per epoch (and validation accuracy when ``X_val``,
        ``y_val`` are given). Returns ``self``; a second ``fit`` continues from the current weights (with the same
        minibatch order when ``seed`` is an integer).
        """
        X = self._check_x(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X and y: expected the same number of rows, got {len(X)} and {len(y)}")
        epochs = check_int(self.epochs, "epochs", 1)
        batch_size = check_int(self.batch_size, "batch_size", 1)
        opt = make_optimizer(self.optimizer, self.params, self.lr, self.momentum)
        rng = numpy_rng(self.seed)  # the minibatch order: the same seed, the same order
        history: dict[str, list] = {"loss": [], "accuracy": []}
        if X_val is not None:
            history["val_accuracy"] = []
        from tqdm.auto import tqdm

        for _ in tqdm(range(epochs), desc="epochs", disable=not self.progress):
            order = rng.permutation(len(X))
            total = 0.0
            for s in range(0, len(X), batch_size):
                idx = order[s : s + batch_size]
                total += self.compute_loss(X[idx], y[idx]) * len(idx)
                opt.step(self.backward(y[idx]))
            history["loss"].append(total / len(X))
            history["accuracy"].append(self.score(X, y) if y.ndim == 1 else float("nan"))
            if X_val is not None:
                history["val_accuracy"].append(self.score(X_val, y_val))
        self._cache = None
        self.history_ = history
        return self


# ---------------------------------------------------------------------------------------------------- optimisers
class SGD:
    """Stochastic gradient descent with momentum: v ← μ v − η g, θ ← θ + v (updates ``params`` in place).
    Notebook 02 §7."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 0.1, momentum: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr: expected a learning rate > 0, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum: expected a value in [0, 1), got {momentum!r}")
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        for k, g in grads.items():
            if self.momentum:
                v = self.velocity[k]
                v *= self.momentum
                v -= self.lr * g
                self.params[k] += v
            else:
                self.params[k] -= self.lr * g


class Adam:
    """Adam (Kingma & Ba, 2015): bias-corrected running means of g and g², θ ← θ − η m̂ / (√v̂ + ε). Notebook 02 §7."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        if not lr > 0:
            raise ValueError(f"lr: expected a learning rate > 0, got {lr!r}")
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            self.params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# ---------------------------------------------------------------------------------------------- gradient checks
def relative_error(a: np.ndarray, b: np.ndarray, zero: float = 0.0) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖): below 1e-7 is right, above 1e-2 is wrong (CS231n).

    When both norms are at most ``zero`` (both are zero up to round-off), the error is 0.
    Notebook 02 §5.
    """
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale <= zero else float(np.linalg.norm(a - b) / scale)


def gradient_check(model: MLP, X, y, h: float = 1e-6) -> dict[str, float]:
    r"""Compare backprop with central differences, :math:`\frac{L(\theta + h) - L(\theta - h)}{2h}`, entry by entry.

    Returns the relative error (:func:`relative_error`) for every parameter array; the worst is ``max(...)``. Run
    it in float64 on small networks: it costs two forward passes per parameter. A gradient can be exactly zero
    (e.g. MAE's bias gradient when the signs of ŷ − y balance); then the finite difference is pure round-off,
    about 1e-10 per entry, so an array whose two gradients both have norm ≤ 1e-8·√size counts as agreeing.
    Notebook 02 §5.
    """
    model.compute_loss(X, y)
    analytic = model.backward(y)
    errors = {}
    for name, theta in model.params.items():
        numeric = np.zeros_like(theta, dtype=np.float64)
        for idx in np.ndindex(theta.shape):
            old = theta[idx]
            theta[idx] = old + h
            up = model.compute_loss(X, y)
            theta[idx] = old - h
            down = model.compute_loss(X, y)
            theta[idx] = old
            numeric[idx] = (up - down) / (2 * h)
        errors[name] = relative_error(analytic[name], numeric, zero=1e-8 * np.sqrt(theta.size))
    return errors


def torch_gradients(model: MLP, X, y) -> dict[str, np.ndarray]:
    """The same loss and gradients computed by ``torch.autograd`` in float64: the oracle for :meth:`MLP.backward`.
    Notebook 02 §5."""
    import torch
    import torch.nn.functional as F

    X = torch.as_tensor(model._check_x(X), dtype=torch.float64)
    Y = torch.as_tensor(model._targets(y, len(X)), dtype=torch.float64)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.params.items()}
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z,
           "leaky_relu": lambda z: F.leaky_relu(z, model.slope), "softmax": lambda z: torch.softmax(z, dim=1)}
    h = X
    for l in range(1, model.n_layers + 1):
        z = h @ params[f"W{l}"] + params[f"b{l}"]
        h = act[(model.f_out if l == model.n_layers else model.f_hidden).name](z)
    clamp = lambda p: p.clamp(_EPS, 1 - _EPS)  # noqa: E731
    pair = (model.f_out.name, model.loss_fn.name)
    if pair == ("softmax", "cross_entropy"):
        loss = -(Y * torch.log_softmax(z, dim=1)).sum() / len(z)
    elif pair == ("sigmoid", "bce"):
        loss = F.binary_cross_entropy_with_logits(z, Y)
    else:
        loss = {"mse": lambda: F.mse_loss(h, Y), "mae": lambda: F.l1_loss(h, Y),
                "bce": lambda: F.binary_cross_entropy(clamp(h), Y),
                "cross_entropy": lambda: -(Y * torch.log(clamp(h))).sum() / len(h)}[model.loss_fn.name]()
    loss.backward()
    return {k: p.grad.numpy() for k, p in params.items()}


# ----------------------------------------------------------------------------------------------- gradient descent
def gradient_descent(grad: Callable[[np.ndarray], np.ndarray], x0, lr: float, steps: int = 50) -> np.ndarray:
    """Plain gradient descent x ← x − η ∇f(x) from ``x0``; returns the path, shape (steps + 1, dim).

    Stops early (the path is shorter) if the iterate becomes non-finite or exceeds 1e6 in size, i.e. diverges.
    Notebook 02 §6.
    """
    if not lr > 0:
        raise ValueError(f"lr: expected a learning rate > 0, got {lr!r}")
    x = np.asarray(x0, dtype=np.float64).copy()
    path = [x.copy()]
    for _ in range(steps):
        x = x - lr * np.asarray(grad(x), dtype=np.float64)
        path.append(x.copy())
        if not np.all(np.isfinite(x)) or np.abs(x).max() > 1e6:
            break
    return np.stack(path)
