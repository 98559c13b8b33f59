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

__all__ = ["kmeans_stepper", "learning_rate_explorer"]


def kmeans_stepper(X2: np.ndarray, history: dict) -> widgets.interactive:
    """A slider over the iterations of a fitted ``KMeans`` on 2-D data (see :func:`declib.plots.kmeans_step`).

    ``.result`` is the WSS of the shown iteration.
    """
    n = len(history["centers"])
    if n == 0:
        raise ValueError("history: expected at least one iteration (fit KMeans with keep_history=True)")

    def show(iteration: int) -> float:
        plots.kmeans_step(X2, history, iteration - 1)
        plt.show()
        return history["wss"][iteration - 1]

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
