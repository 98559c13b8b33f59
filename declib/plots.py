"""Figures the notebooks share: digit grids, confusion matrices, training curves, 2-D embeddings.

Every function draws into a new (or given) matplotlib figure, sets a title and axis labels, and returns the figure;
the caller decides whether to ``plt.show()`` it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["image_grid", "confusion_heatmap", "curves", "embedding_scatter", "kmeans_step",
           "descent_path", "network_diagram"]


def image_grid(
    images: np.ndarray,
    titles: Sequence | None = None,
    ncols: int = 10,
    title: str | None = None,
    size: float = 1.0,
    cmap: str = "gray_r",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
):
    """Draw ``images`` (n×784 rows, or n×28×28) as a grid with ``ncols`` columns; ``titles`` label each image."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"images: rows of length {images.shape[1]} are not square images")
        images = images.reshape(-1, side, side)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"images: expected n×d² or n×d×d with n ≥ 1, got shape {images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles: expected {len(images)} entries, got {len(titles)}")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * (1.25 if titles is not None else 1)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: np.ndarray, row_labels, col_labels, title: str = "Confusion matrix",
                      xlabel: str = "cluster (ordered by the best match)", ylabel: str = "true digit", ax=None):
    """A confusion matrix as an annotated heat map (rows: classes, columns: clusters or predicted classes)."""
    matrix = np.asarray(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * matrix.shape[1] + 2, 0.5 * matrix.shape[0] + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in col_labels])
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in row_labels])
    big = matrix.max() / 2 if matrix.size else 0
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v}", ha="center", va="center", fontsize=7, color="white" if v > big else "black")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.figure.tight_layout()
    return ax.figure


def curves(series: dict[str, Sequence[float]], title: str, xlabel: str, ylabel: str, logy: bool = False, ax=None):
    """Plot one line per entry of ``series`` (name → values)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in series.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 30 else None, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(series) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure


def embedding_scatter(Z2: np.ndarray, labels: np.ndarray, title: str, ax=None, s: float = 2.0,
                      xlabel: str = "component 1", ylabel: str = "component 2"):
    """Scatter a 2-D embedding coloured by ``labels`` (digits), with a legend."""
    Z2 = np.asarray(Z2)
    if Z2.ndim != 2 or Z2.shape[1] != 2:
        raise ValueError(f"Z2: expected shape (n, 2), got {Z2.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
        m = labels == k
        ax.scatter(Z2[m, 0], Z2[m, 1], s=s, color=cmap(int(k) % 10), label=str(k), alpha=0.6, linewidths=0)
    ax.legend(markerscale=4, fontsize=7, loc="best", title="digit", title_fontsize=7)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.figure.tight_layout()
    return ax.figure


def kmeans_step(X2: np.ndarray, history: dict, t: int, ax=None):
    """Lloyd's iteration ``t`` on 2-D data: points coloured by their assignment C(x_i) to the centroids of step t,
    the centroids m_j as crosses, and the path each centroid has travelled so far.

    ``history`` is a fitted ``KMeans.history_``. Returns the figure.
    """
    X2 = np.asarray(X2)
    centers = history["centers"]
    if X2.ndim != 2 or X2.shape[1] != 2:
        raise ValueError(f"X2: expected shape (n, 2), got {X2.shape}")
    if not 0 <= t < len(centers):
        raise ValueError(f"t: expected an iteration in [0, {len(centers) - 1}], got {t}")
    m = centers[t]
    labels = ((X2[:, None, :] - m[None]) ** 2).sum(-1).argmin(1)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    cmap = plt.get_cmap("tab10")
    ax.scatter(X2[:, 0], X2[:, 1], c=[cmap(j % 10) for j in labels], s=6, alpha=0.5, linewidths=0)
    path = np.stack(centers[: t + 1])
    for j in range(m.shape[0]):
        ax.plot(path[:, j, 0], path[:, j, 1], "-", color="black", lw=1, alpha=0.6)
    ax.scatter(m[:, 0], m[:, 1], marker="X", s=140, c=[cmap(j % 10) for j in range(len(m))], edgecolors="black")
    ax.set(title=f"iteration {t + 1}: WSS = {history['wss'][t]:.1f}", xlabel="$x_1$", ylabel="$x_2$")
    ax.figure.tight_layout()
    return ax.figure


def descent_path(f, path: np.ndarray, xlim=(-2.0, 2.0), ylim=(-2.0, 2.0), title: str = "Gradient descent",
                 ax=None):
    """Level sets of a 2-D function ``f(x, y)`` (vectorised) with a descent path drawn over them."""
    path = np.asarray(path)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path: expected shape (steps, 2), got {path.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
    gx, gy = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    ax.contour(gx, gy, f(gx, gy), levels=np.geomspace(0.01, max(float(f(gx, gy).max()), 0.02), 15),
               cmap="viridis", linewidths=0.8)
    shown = path[np.all(np.abs(path) < 10 * max(abs(np.array(xlim + ylim))), axis=1)]
    ax.plot(shown[:, 0], shown[:, 1], "o-", color="crimson", ms=3, lw=1)
    ax.plot(*path[0], "ks", ms=6)
    ax.set(xlim=xlim, ylim=ylim, title=title, xlabel="$w_1$", ylabel="$w_2$")
    ax.figure.tight_layout()
    return ax.figure


def network_diagram(dims: Sequence[int], title: str = "Autoencoder", ax=None):
    """Layers as bars whose heights grow with the log of their width: encoder, code (highlighted), mirrored decoder."""
    widths = list(dims) + list(dims[-2::-1])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(widths) + 1, 3))
    top = np.log2(max(widths) + 1)
    code_at = len(dims) - 1
    for k, w in enumerate(widths):
        h = np.log2(w + 1) / top
        color = "tab:red" if k == code_at else ("tab:blue" if k < code_at else "tab:green")
        ax.add_patch(plt.Rectangle((k - 0.3, -h / 2), 0.6, h, color=color, alpha=0.75))
        ax.text(k, -h / 2 - 0.08, str(w), ha="center", va="top", fontsize=9)
        if k:
            ax.annotate("", xy=(k - 0.32, 0), xytext=(k - 0.68, 0), arrowprops=dict(arrowstyle="->", lw=1))
    ax.text(code_at, 0.58, "code z", ha="center", color="tab:red")
    ax.text(code_at / 2, 0.58, "encoder", ha="center", color="tab:blue")
    ax.text(code_at + (len(widths) - 1 - code_at) / 2, 0.58, "decoder", ha="center", color="tab:green")
    ax.set(xlim=(-0.6, len(widths) - 0.4), ylim=(-0.75, 0.7), title=title)
    ax.axis("off")
    ax.figure.tight_layout()
    return ax.figure
