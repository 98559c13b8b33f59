"""MNIST: an IDX reader, a verified local cache, downloads from public mirrors, and stratified subsets.

``load_mnist()`` returns ``X`` (float32, N×784, pixel values scaled to [0, 1]) and ``y`` (int64 digit labels).
The four files are looked for, in this order, in

1. ``$DECLIB_DATA/mnist/`` (``DECLIB_DATA`` is a data root with one folder per data set),
2. the per-user cache, ``<cache>/mnist/`` (see :func:`cache_dir`),

and only when neither holds them are they downloaded from the public mirrors into the cache. Every file is checked
against the SHA-256 of its *decompressed* bytes (the gzip wrapping differs between copies; the contents do not), and
a download reaches its final name only after it has been verified, by an atomic rename — a failed or interrupted
download leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ._util import atomic_path, numpy_rng

__all__ = [
    "MNIST_FILES",
    "MIRRORS",
    "MNISTUnavailableError",
    "cache_dir",
    "read_idx",
    "find_mnist",
    "download_mnist",
    "prepare_mnist",
    "load_mnist",
    "subset_indices",
    "subset",
]

#: file name → (IDX magic number, SHA-256 of the decompressed file)
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (2051, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (2049, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (2051, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (2049, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

#: public mirrors serving ``<name>.gz``, tried in order
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


class MNISTUnavailableError(RuntimeError):
    """MNIST could not be found locally nor downloaded and verified."""


# ---------------------------------------------------------------------------------------------------------- files
def cache_dir() -> Path:
    """The per-user cache of declib: ``$DECLIB_CACHE`` if set, else the platform's user cache folder + ``declib``.

    That is ``$XDG_CACHE_HOME/declib`` or ``~/.cache/declib`` on Linux and ``~/Library/Caches/declib`` on macOS.
    """
    if os.environ.get("DECLIB_CACHE"):
        return Path(os.environ["DECLIB_CACHE"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "declib"
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base).expanduser() / "declib"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (recognised by its magic bytes, not its name)."""
    raw = Path(path).read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: truncated or corrupt gzip data ({exc})") from exc


def _parse_idx(data: bytes, source: str, expected_magic: int | None = None) -> np.ndarray:
    if len(data) < 4:
        raise ValueError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source}: not an IDX file (the first two bytes must be zero, got {data[:2]!r})")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{source}: wrong IDX magic number {magic}, expected {expected_magic}")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header ({len(data)} bytes, need {header} for {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        kind = "truncated" if actual < expected else "longer than its header says"
        raise ValueError(f"{source}: {kind}: header shape {shape} needs {expected} data bytes, found {actual}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array of the shape its header declares.

    The IDX format: two zero bytes, a type byte (0x08 = uint8), the number of dimensions n, then n big-endian uint32
    sizes and the data. Raises ``ValueError`` for a wrong magic number (when ``expected_magic`` is given), an unknown
    type, or a length that does not match the header (truncated or trailing bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {path}")
    return _parse_idx(_read_bytes(path), str(path), expected_magic)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_in(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _search_folders() -> list[Path]:
    folders = []
    if os.environ.get("DECLIB_DATA"):
        folders.append(Path(os.environ["DECLIB_DATA"]).expanduser() / "mnist")
    folders.append(cache_dir() / "mnist")
    return folders


def find_mnist() -> Path | None:
    """The first folder of ``$DECLIB_DATA/mnist`` and ``<cache>/mnist`` that holds all four files, or ``None``."""
    for folder in _search_folders():
        if all(_file_in(folder, name) for name in MNIST_FILES):
            return folder
    return None


def _where_to_put_files() -> str:
    names = ", ".join(f"{n}.gz" for n in MNIST_FILES)
    places = " or ".join(str(f) for f in _search_folders())
    return (
        f"Put the four MNIST files ({names}; gzip or uncompressed) into {places}, "
        f"or set DECLIB_DATA to a folder whose mnist/ subfolder holds them."
    )


# ------------------------------------------------------------------------------------------------------- download
def _fetch(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def download_mnist(
    folder: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download the four MNIST files into ``folder`` (default ``<cache>/mnist``) and verify them.

    Each file is fetched into a temporary file in ``folder``, its decompressed SHA-256 is checked against
    :data:`MNIST_FILES`, and only then is it renamed to its final name (atomic on one file system). A mirror that
    fails or serves a file with the wrong checksum is skipped; when every mirror fails for a file,
    :class:`MNISTUnavailableError` says what went wrong and where to put the files by hand.
    """
    folder = Path(folder) if folder is not None else cache_dir() / "mnist"
    mirrors = MIRRORS if mirrors is None else mirrors
    if not mirrors:
        raise ValueError("mirrors: expected at least one base URL")
    folder.mkdir(parents=True, exist_ok=True)
    for name, (_, sha) in MNIST_FILES.items():
        if _file_in(folder, name):
            continue
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + f"/{name}.gz"
            try:
                with atomic_path(folder / f"{name}.gz") as tmp:  # renamed into place only once verified
                    if progress:
                        print(f"downloading {url}", file=sys.stderr)
                    _fetch(url, tmp, timeout)
                    got = _sha256(_read_bytes(tmp))
                    if got != sha:
                        raise ValueError(f"checksum mismatch: SHA-256 of the decompressed file is {got}, "
                                         f"expected {sha}")
                break
            except (OSError, ValueError, urllib.error.URLError) as exc:
                errors.append(f"  {url}: {exc}")
        else:
            raise MNISTUnavailableError(
                f"could not download {name}.gz from any mirror:\n" + "\n".join(errors) + "\n" + _where_to_put_files()
            )
    return folder


def prepare_mnist(progress: bool = True) -> str:
    """Make sure MNIST is here and say where: the folder :func:`find_mnist` finds, else a checked download into the
    user cache (:func:`download_mnist`). A notebook's first cell calls it on Colab, after installing the course."""
    folder = find_mnist()
    if folder is not None:
        return f"MNIST: found the four files in {folder}"
    folder = download_mnist(progress=progress)
    return f"MNIST: downloaded the four files into {folder} (SHA-256 checked)"


# ----------------------------------------------------------------------------------------------------------- load
_MEMO: dict[tuple, np.ndarray] = {}


def _load_verified(path: Path, name: str) -> np.ndarray:
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _MEMO:
        magic, sha = MNIST_FILES[name]
        data = _read_bytes(path)
        got = _sha256(data)
        if got != sha:
            raise ValueError(
                f"{path}: checksum mismatch (SHA-256 of the decompressed bytes is {got}, expected {sha}); "
                "the file is corrupt or not the canonical MNIST. Delete it to download it again."
            )
        _MEMO[key] = _parse_idx(data, str(path), magic)
    return _MEMO[key]


def load_mnist(split: str = "all", download: bool = True, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST as ``(X, y)``: ``X`` float32 of shape (N, 784) in [0, 1], ``y`` int64 in 0..9.

    ``split``: ``"train"`` (60,000), ``"test"`` (10,000) or ``"all"`` (70,000: the training digits, then the test
    digits). With ``download=False`` a missing data set raises :class:`MNISTUnavailableError` instead of downloading.
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    folder = find_mnist()
    if folder is None:
        if not download:
            raise MNISTUnavailableError("MNIST was not found and download=False. " + _where_to_put_files())
        cached = cache_dir() / "mnist"
        folder = download_mnist(cached, progress=progress)
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    images, labels = [], []
    for prefix in parts:
        img = _load_verified(_file_in(folder, f"{prefix}-images-idx3-ubyte"), f"{prefix}-images-idx3-ubyte")
        lab = _load_verified(_file_in(folder, f"{prefix}-labels-idx1-ubyte"), f"{prefix}-labels-idx1-ubyte")
        if img.shape[0] != lab.shape[0]:
            raise ValueError(f"{folder}: {prefix} has {img.shape[0]} images but {lab.shape[0]} labels")
        images.append(img.reshape(img.shape[0], -1))
        labels.append(lab)
    X = np.concatenate(images).astype(np.float32)
    X /= 255.0
    y = np.concatenate(labels).astype(np.int64)
    return X, y


# -------------------------------------------------------------------------------------------------------- subsets
def subset_indices(y: np.ndarray, n: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Indices of a stratified random subset of size ``n``: each class keeps its share of ``y`` (largest remainder).

    The indices are returned sorted, so the subset keeps the data's original order.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array of labels, got shape {y.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(y):
        raise ValueError(f"n: expected an integer in [1, {len(y)}] (the number of labels), got {n!r}")
    rng = numpy_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n / len(y))
    take = np.floor(quota).astype(np.int64)
    remainder_order = np.argsort(-(quota - take), kind="stable")
    take[remainder_order[: n - take.sum()]] += 1
    chosen = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def subset(
    X: np.ndarray, y: np.ndarray, n: int, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A stratified random subset ``(X[idx], y[idx])`` of ``n`` points; see :func:`subset_indices`."""
    if len(X) != len(y):
        raise ValueError(f"X and y: expected the same number of rows, got {len(X)} and {len(y)}")
    if n == len(y):
        return X, y
    idx = subset_indices(y, n, seed)
    return X[idx], y[idx]
