"""Interactive widgets for the notebooks.

The logic of each widget is a plain, tested function elsewhere in declib; a widget here only wires sliders to it
(``ipywidgets.interactive``). The wired function returns a value, available as the widget's ``.result`` after each
change, so tests can set a slider's ``.value`` and check what happened. Without a browser the widgets still build
and update; their figures go to whatever matplotlib backend is active.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from . import plots

__all__ = ["kmeans_stepper", "learning_rate_explorer", "code_explorer", "noise_explorer", "frame_slider"]


def kmeans_stepper(X2: np.ndarray, history: dict) -> widgets.interactive:
    """A slider over the iterations of a fitted ``KMeans`` on 2-D data (see :func:`declib.plots.kmeans_step`).

    ``.result`` is the figure of the shown iteration: points coloured by their nearest centroid of that step,
    the centroids as crosses, and the WSS in the title (notebook 01, §1).
    """
    n = len(history["centers"])
    if n == 0:
        raise ValueError("history: expected at least one iteration (fit KMeans with keep_history=True)")

    def show(iteration: int):
        fig = plots.kmeans_step(X2, history, iteration - 1)
        plt.show()
        return fig

    slider = widgets.IntSlider(value=1, min=1, max=n, step=1, description="iteration", continuous_update=False)
    return widgets.interactive(show, iteration=slider)


def learning_rate_explorer(f, grad, x0, lr: float = 0.05, steps: int = 30, xlim=(-2.0, 2.0),
                           ylim=(-2.0, 2.0)) -> widgets.interactive:
    """A log-scale learning-rate slider for gradient descent on a 2-D function (see
    :func:`declib.nn.gradient_descent` and :func:`declib.plots.descent_path`).

    ``.result`` is f at the last iterate (``inf`` when the run diverged).
    """
    from .nn import gradient_descent

    def show(learning_rate: float) -> float:
        path = gradient_descent(grad, x0, learning_rate, steps)
        final = float(f(*path[-1])) if np.all(np.isfinite(path[-1])) else float("inf")
        plots.descent_path(f, path, xlim, ylim,
                           title=f"η = {learning_rate:.3g}: f after {len(path) - 1} steps = {final:.3g}")
        plt.show()
        return final

    slider = widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.05, description="η",
                                    continuous_update=False, readout_format=".3g")
    return widgets.interactive(show, learning_rate=slider)


def code_explorer(model, Z2: np.ndarray, labels: np.ndarray) -> widgets.interactive:
    """Two sliders pick a point in a 2-d code space; the figure shows where it lies among the digits' codes and
    what the decoder makes of it (:func:`declib.autoencoder.decode_point`). ``.result`` is the decoded image."""
    from .autoencoder import decode_point

    Z2 = np.asarray(Z2)
    if Z2.ndim != 2 or Z2.shape[1] != 2 or model.dims[-1] != 2:
        raise ValueError(f"Z2: expected the (n, 2) codes of a model with a 2-d code, got {Z2.shape}")
    lo, hi = np.percentile(Z2, 1, axis=0), np.percentile(Z2, 99, axis=0)

    def show(z1: float, z2: float) -> np.ndarray:
        image = decode_point(model, [z1, z2])
        fig, axes = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1.4, 1]})
        plots.embedding_scatter(Z2, labels, "2-d codes of test digits", ax=axes[0], xlabel="$z_1$", ylabel="$z_2$")
        axes[0].plot([z1], [z2], "k*", ms=18)
        axes[1].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[1].set(title=f"decoded z = ({z1:.2f}, {z2:.2f})")
        axes[1].axis("off")
        plt.show()
        return image

    def slider(k: int, name: str) -> widgets.FloatSlider:
        return widgets.FloatSlider(value=float(np.median(Z2[:, k])), min=float(lo[k]), max=float(hi[k]),
                                   step=float(hi[k] - lo[k]) / 100, description=name, continuous_update=False)

    return widgets.interactive(show, z1=slider(0, "z₁"), z2=slider(1, "z₂"))


def noise_explorer(model, X: np.ndarray, n_show: int = 8) -> widgets.interactive:
    """A noise-level slider: clean, noisy (Gaussian σ, clipped) and denoised rows for ``n_show`` digits
    (:func:`declib.autoencoder.denoise`). ``.result`` is the PSNR of the denoised digits in dB."""
    from .autoencoder import denoise, psnr

    X = np.asarray(X)[:n_show]

    def show(sigma: float) -> float:
        noisy, clean_hat = denoise(model, X, sigma)
        value = psnr(X, clean_hat)
        plots.image_grid(np.concatenate([X, noisy, clean_hat]), ncols=len(X),
                         title=f"clean / noisy (σ = {sigma:.2f}, PSNR {psnr(X, noisy):.1f} dB) / "
                               f"denoised (PSNR {value:.1f} dB)")
        plt.show()
        return value

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="σ", continuous_update=False)
    return widgets.interactive(show, sigma=slider)


def frame_slider(frames: list[np.ndarray], labels: np.ndarray, titles: list[str]) -> widgets.interactive:
    """A slider over 2-d embeddings recorded during training (one scatter per frame, coloured by ``labels``).

    Every frame is drawn with the same axis limits (the 1st to 99th percentile of all frames, padded by 10 %), so
    the eye sees the points move, not the axes. ``.result`` is the figure shown.
    """
    if not frames or len(frames) != len(titles):
        raise ValueError(f"frames and titles: expected the same non-zero number, got {len(frames)} and {len(titles)}")
    lims = np.percentile(np.concatenate(frames), [1, 99], axis=0)
    pad = 0.1 * (lims[1] - lims[0])

    def show(frame: int):
        fig = plots.embedding_scatter(frames[frame], labels, titles[frame], s=3)
        ax = fig.axes[0]
        ax.set(xlim=(lims[0, 0] - pad[0], lims[1, 0] + pad[0]), ylim=(lims[0, 1] - pad[1], lims[1, 1] + pad[1]))
        plt.show()
        return fig

    slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="refresh", continuous_update=False)
    return widgets.interactive(show, frame=slider)
