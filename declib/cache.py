"""A cache of trained weights, keyed by everything that determined them.

A file's name is a hash of its *key*: the architecture, the schedule, the seed and a fingerprint of the training data
(see :func:`make_key`). Change any of them and the key changes, so stale weights are never picked up. Each file
holds a SHA-256 of its own payload: a truncated or corrupted file is detected on load, reported, moved aside
and retrained — never loaded silently. Writes go to a temporary file in the same folder and are renamed into place,
so an interrupted write leaves the previous state intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ._util import atomic_path
from .data import cache_dir

__all__ = ["data_fingerprint", "make_key", "weights_dir", "save_checkpoint", "load_checkpoint", "CacheCorruptWarning"]

_MAGIC = b"DECLIB-CKPT-1\n"


class CacheCorruptWarning(UserWarning):
    """A cache file failed its checksum or could not be read; it was moved aside and will be recomputed."""


def data_fingerprint(X) -> str:
    """SHA-256 (first 16 hex digits) of the array's shape, dtype and bytes."""
    arr = np.ascontiguousarray(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:16]


def make_key(**parts) -> str:
    """A stable hash (16 hex digits) of the keyword arguments (JSON-serialisable values)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def weights_dir() -> Path:
    """``<cache>/weights`` (see :func:`declib.data.cache_dir`)."""
    return cache_dir() / "weights"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (tensors and plain data) atomically with a checksum."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(_MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def load_checkpoint(path: str | os.PathLike, key: str | None = None) -> dict | None:
    """The payload saved at ``path``, or ``None`` when there is none, it is corrupt, or its ``"key"`` differs.

    A corrupt file (bad header, checksum mismatch, unreadable) is renamed to ``<name>.corrupt`` (never deleted: it may
    hold hours of CPU training that a person can still inspect) with a :class:`CacheCorruptWarning`.
    """
    path = Path(path)
    if not path.is_file():
        return None
    raw = path.read_bytes()
    problem = None
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 65:
        problem = "not a declib checkpoint (bad header)"
    else:
        digest, body = raw[len(_MAGIC) : len(_MAGIC) + 64], raw[len(_MAGIC) + 65 :]
        if hashlib.sha256(body).hexdigest().encode() != digest:
            problem = "checksum mismatch (truncated or corrupted)"
        else:
            try:
                payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is treated the same way
                problem = f"unreadable ({exc})"
    if problem:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)  # kept for inspection (it may hold hours of training), out of the cache's way
        warnings.warn(f"{path}: {problem}; moved aside to {aside.name}, it will be recomputed", CacheCorruptWarning,
                      stacklevel=2)
        return None
    if key is not None and payload.get("key") != key:
        return None
    return payload
