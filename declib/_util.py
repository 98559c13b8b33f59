"""Plumbing shared by declib's modules, and the one contract every public function follows.

The contract
------------
* **Arguments are checked up front.** The wrong *type* (a string for an integer, an object array, ``True`` for a
  count) raises :class:`TypeError`; a value of the right type that is out of range (a negative batch size, NaN in the
  data, K larger than n) raises :class:`ValueError`. Every message starts with the argument's name and says what was
  expected and what came. NumPy integers and floats are accepted wherever Python's are.
* **Data** is a 2-D array-like or tensor (n_samples × n_features), non-empty, numeric, finite.
* **seed**: an integer (NumPy's too) gives the same numbers on the same device every time; a
  ``numpy.random.Generator`` (NumPy code) is used as it is; ``None`` draws fresh entropy from the operating system,
  so two calls differ. Functions that draw default to ``seed=0``: the course's numbers reproduce unless asked not to.
  No function leaves the global random state of NumPy, Python or torch changed (except
  :func:`declib.config.seed_everything`, whose job that is); torch's global generator, which ``nn.Dropout`` draws
  from, is seeded only inside ``torch.random.fork_rng``.
* **device**: ``None`` or ``"auto"`` picks CUDA, then Apple's MPS, then the CPU; ``"cpu"``, ``"cuda"``, ``"mps"``
  (or a ``torch.device``) name one. Functions that use an already trained model (``encode``, ``predict``, ...) take
  no device: they run where the model's weights are.
* **Estimators** (``KMeans``, ``DEC``, ``MLP``) take every hyperparameter in ``__init__`` and store it unchanged;
  ``fit(X, y=None)`` checks them, learns, records ``history_`` and returns ``self``; fitted attributes end in ``_``;
  ``get_params``/``set_params`` make :func:`sklearn.base.clone` work.
* **Files** are written through :func:`atomic_path`, so no half-written file is ever left behind.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch


# --------------------------------------------------------------------------------------------------- scalars
def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int in [low, high]: TypeError for a non-integer (``bool`` included), ValueError when out
    of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bound = (f"in [{low}, {high}]" if low is not None and high is not None
                 else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name}: expected an integer {bound}, got {value}")
    return int(value)


def check_number(value, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given (``low_open``: > low instead of ≥ low)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    bad = (not np.isfinite(v) or (low is not None and (v <= low if low_open else v < low))
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value!r}")
    return v


def check_choice(value, name: str, options) -> str:
    """``value`` if it is one of ``options`` (strings), else ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------------ data
def as_float_tensor(X, name: str = "X", device: torch.device | None = None,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """``X`` as a 2-D, non-empty, finite floating tensor on ``device`` (``None``: where it is).

    ``dtype=None`` keeps float32 and float64 (integers and booleans become float64, other floats float32); a dtype
    converts. Tensors are detached, never copied when nothing changes.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        arr = np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array of shape (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, got shape {tuple(t.shape)}")
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else (
            torch.float32 if t.is_floating_point() else torch.float64)
    t = t.to(device=device if device is not None else t.device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinity")
    return t


def as_float_array(X, name: str = "X", dtype=np.float64, n_features: int | None = None) -> np.ndarray:
    """``X`` as a 2-D, non-empty, finite NumPy array of ``dtype`` (with ``n_features`` columns when given)."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array (n_samples, n_features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} features per row, got shape {arr.shape}")
    arr = arr.astype(dtype, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


# ---------------------------------------------------------------------------------------------- randomness
def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)


def check_seed(seed, name: str = "seed") -> int:
    """An integer seed ≥ 0 (``None``: fresh entropy from the operating system)."""
    return _fresh_seed() if seed is None else check_int(seed, name, 0)


def numpy_rng(seed, name: str = "seed") -> np.random.Generator:
    """A NumPy generator: ``seed`` itself when it is one, else one seeded by :func:`check_seed`."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed, name))


def torch_generator(seed, device: torch.device, name: str = "seed") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded by :func:`check_seed` (one stream per training run)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(check_seed(seed, name))
    return generator


# ------------------------------------------------------------------------------------------------ training
def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, capturable: bool = False):
    """The optimiser ``name`` ("sgd" with ``momentum``, or "adam") over ``params``.

    ``params`` is an iterable of torch parameters, or a dict of NumPy arrays (the hand-written optimisers of
    :mod:`declib.nn`, which update the arrays in place). ``capturable`` keeps Adam's step counter on the device, as a
    CUDA graph needs.
    """
    check_choice(name, "optimizer", ("sgd", "adam"))
    lr = check_number(lr, "lr", 0.0, low_open=True)
    momentum = check_number(momentum, "momentum", 0.0, 1.0, high_open=True)
    if isinstance(params, dict):
        from . import nn as numpy_nn

        return numpy_nn.SGD(params, lr, momentum) if name == "sgd" else numpy_nn.Adam(params, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr, capturable=capturable)


def minibatches(n: int, batch_size: int, generator: torch.Generator, device: torch.device,
                drop_last: bool = False) -> Iterator[torch.Tensor]:
    """An endless stream of index batches: each epoch a fresh random permutation of range(n), cut into slices of
    ``batch_size`` (the last one shorter, or skipped with ``drop_last``)."""
    while True:
        perm = torch.randperm(n, generator=generator, device=device)
        for s in range(0, n, batch_size):
            if drop_last and s + batch_size > n:
                break
            yield perm[s : s + batch_size]


@torch.no_grad()
def batched(fn: Callable, *arrays, batch_size: int = 8192):
    """``fn`` applied to the same slices of ``batch_size`` rows of every array (no gradients kept), the results
    concatenated (torch tensors or NumPy arrays): inference over 70,000 digits without holding every layer's
    activations at once."""
    n = len(arrays[0])
    parts = [fn(*(a[s : s + batch_size] for a in arrays)) for s in range(0, n, batch_size)]
    return np.concatenate(parts) if isinstance(parts[0], np.ndarray) else torch.cat(parts)


# ------------------------------------------------------------------------------------------------ estimators
class ParamsMixin:
    """scikit-learn's ``get_params``/``set_params`` for a class whose ``__init__`` stores every argument unchanged
    under its own name, so that :func:`sklearn.base.clone` builds a fresh, unfitted copy."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments by name (``deep`` is accepted for scikit-learn; nested estimators are
        returned as they are)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "ParamsMixin":
        """Set constructor arguments by name; unknown names raise ValueError. Returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{name}: not a parameter of {type(self).__name__} (expected one of {valid})")
            setattr(self, name, value)
        return self


def check_fitted(estimator, attribute: str) -> None:
    """RuntimeError naming the estimator when ``fit`` has not run (``attribute`` is missing or None)."""
    if getattr(estimator, attribute, None) is None:
        raise RuntimeError(f"this {type(estimator).__name__} is not fitted yet: call fit(X) first")


# ----------------------------------------------------------------------------------------------------- files
@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path`` to write into; renamed to ``path`` when the block ends normally, deleted when
    it raises. The rename is atomic on one file system, so ``path`` holds either its old content or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); give it a normal file's mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
