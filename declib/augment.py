r"""Data augmentation for digits: random small shifts and rotations of a whole batch at once, in torch.

An autoencoder trained on augmented digits (Guo et al., 2018, "Deep Embedded Clustering with Data Augmentation")
must give a shifted or slightly rotated "7" almost the same code as the original, because it sees both and must
reconstruct both. Its embedding then groups digits by *shape* rather than by *position*, which is what a
clustering of MNIST needs: k-means on raw pixels separates a "1" written left of centre from one written right of it.

For each image :math:`x_i` (a side × side grid) a rotation :math:`\varphi_i \sim U(-\varphi_{max}, \varphi_{max})`
and a shift :math:`(t_{x,i}, t_{y,i})`, each uniform on the integers :math:`\{-s, \dots, s\}`, are drawn, and

.. math:: \tilde x_i(u) = x_i\!\left(R_{\varphi_i}^{-1}(u - t_i)\right)

is sampled bilinearly (``torch.nn.functional.grid_sample``), with zeros (background) outside the image. With
:math:`\varphi_{max} = 0` this is an exact integer shift. Every draw comes from the ``generator`` passed in, so
a seeded training run sees the same augmented batches every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["shift_images", "random_affine", "make_augment"]


def shift_images(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Image i of the batch ``x`` (n × side², square images, row-major) moved right by ``shifts[i, 0]`` and down by
    ``shifts[i, 1]`` whole pixels (negative: left, up); pixels moved in from outside are 0 (background), pixels
    moved out are lost. Notebook 06 §2."""
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D batch (n, side*side), got shape {tuple(x.shape)}")
    side = int(round(math.sqrt(x.shape[1])))
    if side * side != x.shape[1]:
        raise ValueError(f"x: expected square images (side*side features), got {x.shape[1]} features")
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(f"shifts: expected shape ({x.shape[0]}, 2) (one (right, down) pair per image), got "
                         f"{tuple(shifts.shape)}")
    n, dev = x.shape[0], x.device
    shifts = shifts.to(dev).long()
    m = int(shifts.abs().max()) if n else 0
    pad = F.pad(x.view(n, side, side), (m,) * 4)
    rows = (m - shifts[:, 1, None]) + torch.arange(side, device=dev)  # (n, side)
    cols = (m - shifts[:, 0, None]) + torch.arange(side, device=dev)
    out = pad[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(n, side * side)


def random_affine(x: torch.Tensor, max_shift: int = 2, max_rotation: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of the batch ``x`` (n × side², pixels of square images, row-major) with each image shifted by up to
    ``max_shift`` whole pixels in x and y and rotated by up to ``max_rotation`` degrees about its centre.
    Notebook 04 §6."""
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D batch (n, side*side), got shape {tuple(x.shape)}")
    side = int(round(math.sqrt(x.shape[1])))
    if side * side != x.shape[1]:
        raise ValueError(f"x: expected square images (side*side features), got {x.shape[1]} features")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or not 0 <= max_shift < side:
        raise ValueError(f"max_shift: expected an integer in [0, {side}), got {max_shift!r}")
    if not (isinstance(max_rotation, (int, float)) and 0 <= max_rotation <= 180):
        raise ValueError(f"max_rotation: expected degrees in [0, 180], got {max_rotation!r}")
    n, dev = x.shape[0], x.device
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator, device=dev).to(x.dtype)
    if max_rotation == 0:  # an exact integer shift: pad and crop, no interpolation
        return shift_images(x, shifts)
    angle = (torch.rand(n, generator=generator, device=dev, dtype=x.dtype) * 2 - 1) * math.radians(max_rotation)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output coordinates in [-1, 1] to input coordinates: the inverse transform
    theta = torch.stack([torch.stack([cos, sin, -(cos * shifts[:, 0] + sin * shifts[:, 1]) * 2 / side], 1),
                         torch.stack([-sin, cos, -(-sin * shifts[:, 0] + cos * shifts[:, 1]) * 2 / side], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, side, side), align_corners=False)
    out = F.grid_sample(x.view(n, 1, side, side), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(n, side * side)


def make_augment(max_shift: int = 2, max_rotation: float = 0.0) -> Callable[[torch.Tensor, torch.Generator | None],
                                                                            torch.Tensor]:
    """An augmentation ``augment(x, generator)`` for :func:`declib.autoencoder.train_autoencoder`. Notebook 04 §6."""
    random_affine(torch.zeros(1, 784), max_shift, max_rotation)  # validate the arguments now, not mid-training
    return lambda x, generator=None: random_affine(x, max_shift, max_rotation, generator)
