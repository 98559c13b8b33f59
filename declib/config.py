"""Run-time settings: the active profile, seeding, the default device and the numeric precision.

Three profiles share one code path:

* ``cpu`` runs the whole course on all 70,000 digits on a laptop CPU in minutes: the deep autoencoder is trained end
  to end on randomly shifted and rotated digits with Adam, a one-cycle learning rate and bfloat16 autocast where the
  processor supports it, and DEC runs its encoder in bfloat16 (notebook 04 measures each of these choices);
* ``full`` runs the paper-scale schedules on all 70,000 digits, for a GPU;
* ``fast`` (``DECLIB_FAST=1``, set by CI) runs the same code as ``cpu`` on a stratified subset with shorter schedules.

The active profile is ``auto`` unless chosen: ``fast`` when ``DECLIB_FAST=1``, else ``full`` when a CUDA GPU is
present and ``cpu`` otherwise. ``DECLIB_PROFILE=cpu|full|fast`` names one before Python starts; inside a notebook,
``P = use_profile("cpu")`` switches it. Every size and schedule a notebook or the main job uses is a field of
:class:`Profile`, so nothing is scattered through the notebooks as a literal.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np
import torch

__all__ = ["Profile", "PROFILES", "profile", "profile_name", "use_profile", "seed_everything", "default_device",
           "resolve_device", "resolve_precision", "bf16_supported", "describe_runtime", "NOTEBOOK_MINUTES"]


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
    dec_precision: str  # "fp32", or "bf16" (autocast for the encoder/decoder where the processor supports it)
    min_sae_kmeans_acc: float
    min_dec_acc: float
    # --- the same in every profile: the settings of the main job's stages (declib.pipeline), named here once ---
    n_clusters: int = 10  # K: MNIST's ten digits
    subset_seed: int = 0  # the stratified subset (fast profile) is the same for every stage and seed
    ae_lr: float = 3e-3  # the 784→10→784 autoencoder: Adam, batches of 256
    ae_batch_size: int = 256
    embedding_kmeans_n_init: int = 20  # k-means restarts on every learned embedding (pixels use kmeans_n_init)
    dec_optimizer: str = "sgd"  # DEC as in the paper: SGD 0.01, momentum 0.9, batches of 256, tol 0.1 %
    dec_lr: float = 0.01
    dec_batch_size: int = 256
    dec_tol: float = 0.001
    idec_optimizer: str = "adam"  # IDEC as Guo et al. (2017): Adam 1e-3, γ = 0.1
    idec_lr: float = 1e-3
    idec_gamma: float = 0.1
    figure_sample: int = 5_000  # digits in the 2-D embedding figure
    # --- beyond DEC (notebook 06 and the main job's last stages) ------------------------------------------------
    dec_augment: tuple[int, float] = (2, 10.0)  # DEC-DA: clustering stage on digits shifted ±2 px, rotated ±10°
    umap_n_components: int | None = None  # N2D: UMAP to K dimensions (None: n_clusters), 20 neighbours, min_dist 0
    umap_n_neighbors: int = 20
    umap_min_dist: float = 0.0
    k_range: tuple[int, ...] = tuple(range(5, 16))  # choosing K without labels
    k_silhouette_sample: int = 10_000  # points the silhouette is computed on
    k_dec_n_train: int = 10_000  # DEC's generalizability: digits DEC trains on for every K ...
    k_dec_n_val: int = 10_000  # ... and held-out digits it is validated on
    n_restarts: int = 30  # single k-means runs in the robustness study


_FULL = Profile(
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
    dec_precision="fp32",
    min_sae_kmeans_acc=0.85,
    min_dec_acc=0.88,
)

PROFILES: dict[str, Profile] = {
    "full": _FULL,
    # all 70,000 digits on a laptop CPU: the course's default without a CUDA GPU. Notebooks 00-03 run exactly as in
    # ``full``; the deep autoencoder and DEC take the CPU schedule and bfloat16 (see declib.stacked.SCHEDULES["cpu"]).
    "cpu": replace(_FULL, name="cpu", sae_schedule="cpu", sae_seeds=1, dec_seeds=3, dec_precision="bf16",
                   min_dec_acc=0.90),
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
        dec_max_iter=4_000,
        dec_precision="bf16",
        min_sae_kmeans_acc=0.70,
        min_dec_acc=0.80,
        k_silhouette_sample=3_000,
        k_dec_n_train=4_000,
        k_dec_n_val=2_000,
        n_restarts=20,
    ),
}


_chosen: str | None = None  # set by use_profile()


def _auto_profile() -> str:
    """``full`` with a CUDA GPU, else ``cpu``."""
    return "full" if torch.cuda.is_available() else "cpu"


def profile_name() -> str:
    """The active profile: the one chosen with :func:`use_profile`, else ``$DECLIB_PROFILE``, else ``fast`` when
    ``DECLIB_FAST`` is true, else ``auto`` (``full`` with a CUDA GPU, ``cpu`` without)."""
    if _chosen is not None:
        return _chosen
    named = os.environ.get("DECLIB_PROFILE", "").strip().lower()
    if named and named != "auto":
        if named not in PROFILES:
            raise ValueError(f"DECLIB_PROFILE must be one of {sorted(PROFILES) + ['auto']}, got {named!r}")
        return named
    value = os.environ.get("DECLIB_FAST", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return "fast"
    if value not in ("", "0", "false", "no", "off"):
        raise ValueError(f"DECLIB_FAST must be 0/1 (or true/false), got {value!r}")
    return _auto_profile()


def use_profile(name: str | None = "auto") -> Profile:
    """Make ``name`` the active profile for this Python process (a notebook's kernel) and return its settings.

    ``"auto"`` or ``None`` goes back to the environment's choice (:func:`profile_name`)."""
    global _chosen
    if name is not None and name != "auto" and name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES) + ['auto']}, got {name!r}")
    _chosen = None if name in (None, "auto") else name
    return profile()


def profile(name: str | None = None, **overrides) -> Profile:
    """The settings of profile ``name`` (default: the active one, see :func:`profile_name`; ``"auto"``: ``full``
    with a CUDA GPU, else ``cpu``).

    Keyword arguments override single fields, e.g. ``profile("fast", mlp_epochs=1)``.
    """
    name = profile_name() if name is None else _auto_profile() if name == "auto" else name
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES) + ['auto']}, got {name!r}")
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


def bf16_supported(device: str | torch.device | None = None) -> bool:
    """Whether bfloat16 arithmetic is fast on ``device``: natively supported matrix units (AVX-512 BF16 or AMX on
    x86 CPUs, through oneDNN; Ampere or newer on CUDA). Elsewhere torch would emulate it, slower than float32."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: str | torch.device | None = None, warn: bool = True) -> str:
    """``"fp32"`` or ``"bf16"`` for training on ``device``. ``"bf16"`` (or ``"auto"``) falls back to ``"fp32"``
    where :func:`bf16_supported` says no — with a warning when bf16 was asked for by name."""
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision: expected 'fp32', 'bf16' or 'auto', got {precision!r}")
    if precision == "fp32":
        return "fp32"
    if bf16_supported(device):
        return "bf16"
    if precision == "bf16" and warn:
        import warnings

        warnings.warn(f"bfloat16 is not natively supported on {resolve_device(device)}: training in float32 "
                      "instead (the same results, slower)", stacklevel=2)
    return "fp32"


#: Wall time of a top-to-bottom run of each notebook on a fresh kernel from an empty weights cache, in minutes,
#: measured on the 2-core AMD EPYC CI machine (AVX-512 BF16) in the ``cpu`` and ``fast`` profiles, rounded up
#: (cpu: 0.1, 0.8, 0.2, 1.5, 8.6 and 10.4 min; fast: 6, 9, 5, 14 and 196 s, and 42 s for 05 after 04 has filled
#: the cache, about 4 min from an empty one). The ``full`` profile on a GPU has no measurement per notebook yet
#: (None): the main job took 7.5 min for five seeds on an H100.
NOTEBOOK_MINUTES: dict[str, dict[str, float | None]] = {
    "00": {"cpu": 0.2, "full": None, "fast": 0.2},
    "01": {"cpu": 1.0, "full": None, "fast": 0.2},
    "02": {"cpu": 0.5, "full": None, "fast": 0.1},
    "03": {"cpu": 1.5, "full": None, "fast": 0.3},
    "04": {"cpu": 9.0, "full": None, "fast": 3.5},
    "05": {"cpu": 12.0, "full": None, "fast": 4.0},
    "06": {"cpu": 19.0, "full": None, "fast": 6.5},
}


def describe_runtime(notebook: str | None = None) -> str:
    """A notebook's first output: profile, device, precision, versions and, given the notebook's number, what a
    top-to-bottom run is expected to cost here."""
    name = profile_name()
    dev = default_device()
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    precision = resolve_precision("auto", dev, warn=False)
    line = (f"profile: {name} | device: {dev_name} | precision for deep networks: "
            f"{precision if name != 'full' else 'fp32'} | torch {torch.__version__} | numpy {np.__version__} | "
            f"CPU threads: {torch.get_num_threads()}")
    if notebook is not None:
        minutes = NOTEBOOK_MINUTES.get(str(notebook), {}).get(name)
        where = {"cpu": "a 2-core laptop-class CPU", "full": "one NVIDIA H100 GPU", "fast": "a 2-core CPU"}[name]
        if minutes is not None:
            line += f"\nexpected run time of this notebook: about {minutes:g} min on {where} (profile {name})"
        else:
            line += f"\nexpected run time of this notebook: not measured for profile {name} on {where} yet"
        if name == "full" and dev.type != "cuda":
            line += ("\nwarning: the full profile's schedules are sized for a GPU (an hour or more per deep network "
                     "on a CPU); on this device use use_profile('cpu')")
        if name == "cpu" and precision == "fp32" and dev.type == "cpu":
            line += "\n(this CPU has no native bfloat16: expect the deep networks to take about 3× longer)"
    return line
