"""Each plotting function draws what it says: checked on the artists of the figure it returns."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from declib import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_draws_every_image_in_order_with_its_title():
    images = np.random.default_rng(0).uniform(size=(7, 16))
    fig = plots.image_grid(images, titles=list("abcdefg"), ncols=3, title="seven")
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 9 and len(drawn) == 7  # a 3 × 3 grid, two cells left empty
    for k, ax in enumerate(drawn):
        np.testing.assert_array_equal(ax.images[0].get_array(), images[k].reshape(4, 4))
        assert ax.get_title() == "abcdefg"[k]
    assert fig._suptitle.get_text() == "seven"
    with pytest.raises(ValueError, match="not square"):
        plots.image_grid(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="titles: expected 7"):
        plots.image_grid(images, titles=["a"])


def test_confusion_heatmap_shows_the_matrix_and_annotates_every_cell():
    matrix = np.array([[5, 1, 0], [0, 7, 2]])
    fig = plots.confusion_heatmap(matrix, ["0", "1"], ["c0", "c1", "c2"], title="T")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), matrix)
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in matrix.ravel())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c1", "c2"] and ax.get_title() == "T"


def test_curves_draws_one_line_per_series_from_one():
    fig = plots.curves({"train": [3.0, 2.0, 1.0], "test": [4.0, 3.5, 3.4]}, "loss", "epoch", "MSE", logy=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["train", "test"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [4.0, 3.5, 3.4])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch" and ax.get_legend() is not None


def test_embedding_scatter_draws_each_digit_in_its_own_colour():
    Z2 = np.random.default_rng(1).normal(size=(40, 2))
    labels = np.arange(40) % 4
    fig = plots.embedding_scatter(Z2, labels, "codes")
    ax = fig.axes[0]
    assert len(ax.collections) == 4  # one scatter per digit
    for k, collection in enumerate(ax.collections):
        np.testing.assert_allclose(collection.get_offsets(), Z2[labels == k])
    colours = {tuple(c.get_facecolors()[0][:3]) for c in ax.collections}
    assert len(colours) == 4
    with pytest.raises(ValueError, match="Z2: expected shape"):
        plots.embedding_scatter(np.zeros((5, 3)), np.zeros(5), "x")


def test_descent_path_draws_the_path_over_level_sets():
    path = np.array([[1.0, 1.0], [0.5, 0.2], [0.1, 0.0]])
    fig = plots.descent_path(lambda x, y: x**2 + y**2, path, title="GD")
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.c_[ax.lines[0].get_xdata(), ax.lines[0].get_ydata()], path)
    assert ax.collections  # the contour lines
    with pytest.raises(ValueError, match="path: expected shape"):
        plots.descent_path(lambda x, y: x, np.zeros(3))


def test_network_diagram_draws_encoder_code_and_mirrored_decoder():
    fig = plots.network_diagram([784, 500, 10])
    ax = fig.axes[0]
    assert len(ax.patches) == 5  # 784, 500, 10 | 500, 784
    widths = [t.get_text() for t in ax.texts if t.get_text().isdigit()]
    assert widths == ["784", "500", "10", "500", "784"]
    heights = [p.get_height() for p in ax.patches]
    assert heights[2] == min(heights) and heights[0] == heights[4] == max(heights)
