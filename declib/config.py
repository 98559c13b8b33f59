"""Run-time settings: the active profile, seeding and the default device.

Two profiles share one code path:

* ``full`` (the default) runs the paper-scale schedules on all 70,000 digits;
* ``fast`` (``DECLIB_FAST=1``, set by CI) runs the same code on a stratified subset with shorter schedules.

Every size and schedule a notebook or the main job uses is a field of :class:`Profile`, so nothing is scattered
through the notebooks as a literal. Notebooks read ``P = profile()`` once and use ``P.n_samples``, ``P.mlp_epochs``...
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np
import torch

__all__ = ["Profile", "PROFILES", "profile", "profile_name", "seed_everything", "default_device", "resolve_device",
           "describe_runtime"]


@dataclass(frozen=True)
class Profile:
    """Sizes, schedules and headline thresholds for one profile.

    Thresholds are what a notebook asserts, so a notebook that runs but learns nothing fails CI.
    """

    name: str
    #: digits used by the clustering notebooks and the main job (70,000 = all of MNIST)
    n_samples: int
    # --- k-means (notebook 01) ---------------------------------------------------------------------------------
    kmeans_n_init: int
    elbow_ks: tuple[int, ...]
    elbow_n_samples: int
    init_compare_seeds: int
    min_kmeans_pixel_acc: float
    # --- numpy MLP (notebook 02) -------------------------------------------------------------------------------
    mlp_train_size: int
    mlp_epochs: int
    min_mlp_test_acc: float
    # --- autoencoders (notebook 03) ----------------------------------------------------------------------------
    ae_epochs: int  # the 784→10→784 autoencoders
    ae_bottlenecks: tuple[int, ...]
    ae_sweep_epochs: int
    min_ae_codes_acc: float  # k-means on the 784→10→784 codes
    # --- stacked autoencoder (notebook 04) and DEC (notebook 05) -----------------------------------------------
    sae_schedule: str  # a name in declib.stacked.SCHEDULES
    sae_layerwise: bool  # does DEC start from the layer-wise pretrained network (True) or end-to-end only (False)
    sae_seeds: int
    dec_seeds: int
    dec_update_interval: int
    dec_max_iter: int
    min_sae_kmeans_acc: float
    min_dec_acc: float


PROFILES: dict[str, Profile] = {
    "full": Profile(
        name="full",
        n_samples=70_000,
        kmeans_n_init=10,
        elbow_ks=tuple(range(2, 21)),
        elbow_n_samples=20_000,
        init_compare_seeds=100,
        min_kmeans_pixel_acc=0.50,
        mlp_train_size=60_000,
        mlp_epochs=20,
        min_mlp_test_acc=0.975,
        ae_epochs=30,
        ae_bottlenecks=(2, 5, 10, 32, 64),
        ae_sweep_epochs=20,
        min_ae_codes_acc=0.48,
        sae_schedule="full",
        sae_layerwise=False,
        sae_seeds=3,
        dec_seeds=5,
        dec_update_interval=140,
        dec_max_iter=20_000,
        min_sae_kmeans_acc=0.85,
        min_dec_acc=0.88,
    ),
    "fast": Profile(
        name="fast",
        n_samples=10_000,
        kmeans_n_init=3,
        elbow_ks=tuple(range(2, 16)),
        elbow_n_samples=3_000,
        init_compare_seeds=20,
        min_kmeans_pixel_acc=0.45,
        mlp_train_size=10_000,
        mlp_epochs=3,
        min_mlp_test_acc=0.90,
        ae_epochs=20,
        ae_bottlenecks=(2, 10, 32),
        ae_sweep_epochs=5,
        min_ae_codes_acc=0.35,
        sae_schedule="fast",
        sae_layerwise=False,
        sae_seeds=1,
        dec_seeds=1,
        dec_update_interval=50,
        dec_max_iter=1_500,
        min_sae_kmeans_acc=0.50,
        min_dec_acc=0.50,
    ),
}


def profile_name() -> str:
    """``"fast"`` when the environment variable ``DECLIB_FAST`` is set to a true value, else ``"full"``."""
    value = os.environ.get("DECLIB_FAST", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return "full"
    if value in ("1", "true", "yes", "on"):
        return "fast"
    raise ValueError(f"DECLIB_FAST must be 0/1 (or true/false), got {value!r}")


def profile(name: str | None = None, **overrides) -> Profile:
    """The settings of profile ``name`` (default: the active one, see :func:`profile_name`).

    Keyword arguments override single fields, e.g. ``profile("fast", mlp_epochs=1)``.
    """
    name = profile_name() if name is None else name
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    return replace(PROFILES[name], **overrides) if overrides else PROFILES[name]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators (all devices) and make cuDNN deterministic.

    declib's own functions take an explicit ``seed`` or generator; this is for code a learner writes in a notebook.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA/MPS device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def default_device() -> torch.device:
    """CUDA when present, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` → :func:`default_device`; anything else is passed to ``torch.device`` and checked."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but torch sees no CUDA GPU")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was asked for, but torch sees no Apple GPU")
    return device


def describe_runtime() -> str:
    """One line for a notebook's first output: profile, device and library versions."""
    dev = default_device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return (
        f"profile: {profile_name()} | device: {name} | torch {torch.__version__} | numpy {np.__version__} | "
        f"CPU threads: {torch.get_num_threads()}"
    )
