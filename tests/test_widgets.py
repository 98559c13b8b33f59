import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from declib.kmeans import KMeans
from declib.plots import kmeans_step
from declib.widgets import kmeans_stepper


@pytest.fixture(scope="module")
def fitted():
    X, _ = make_blobs(n_samples=300, centers=3, random_state=0)
    return X, KMeans(3, init="random", n_init=1, seed=2, device="cpu").fit(X)


def colours_by_nearest(fig, X, centers):
    """The points' colours in the figure, and the colours their nearest centroid of ``centers`` has there."""
    points, crosses = fig.axes[0].collections[0], fig.axes[0].collections[-1]
    nearest = ((X[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
    return points.get_facecolors(), crosses.get_facecolors()[nearest]


def test_kmeans_stepper_draws_the_chosen_iteration(fitted):
    X, km = fitted
    w = kmeans_stepper(X, km.history_)
    slider = w.children[0]
    assert slider.max == km.n_iter_ >= 3  # one position per iteration
    for t in (1, 2, km.n_iter_):
        slider.value = t
        fig, centers = w.result, km.history_["centers"][t - 1]
        crosses = fig.axes[0].collections[-1]
        np.testing.assert_allclose(crosses.get_offsets(), centers)  # the centroids of step t
        point_colours, nearest_colours = colours_by_nearest(fig, X, centers)
        np.testing.assert_allclose(point_colours[:, :3], nearest_colours[:, :3])  # C(x_i) for those centroids
        assert f"iteration {t}:" in fig.axes[0].get_title() and f"{km.history_['wss'][t - 1]:.1f}" in \
            fig.axes[0].get_title()
    plt.close("all")


def test_kmeans_step_plot(fitted):
    X, km = fitted
    fig = kmeans_step(X, km.history_, 0)
    assert "iteration 1" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="t: expected an iteration"):
        kmeans_step(X, km.history_, km.n_iter_)
    with pytest.raises(ValueError, match="X2: expected shape"):
        kmeans_step(np.zeros((3, 3)), km.history_, 0)
    plt.close("all")


def test_learning_rate_explorer_follows_the_slider():
    from declib.widgets import learning_rate_explorer

    f = lambda x, y: x**2 + 10 * y**2  # noqa: E731
    grad = lambda w: np.array([2 * w[0], 20 * w[1]])  # noqa: E731
    w = learning_rate_explorer(f, grad, [1.5, 1.0], lr=0.001, steps=30)
    slow = w.result
    w.children[0].value = 0.05
    good = w.result
    w.children[0].value = 0.5  # 1 − 0.5·20 = −9: diverges
    assert good < 0.01 < 1.0 < slow and w.result > 1e3  # 2.25·0.9^60 ≈ 0.004 after 30 steps at η = 0.05
    plt.close("all")


def test_code_explorer_decodes_the_chosen_point():
    from declib.autoencoder import Autoencoder, decode_point
    from declib.widgets import code_explorer

    model = Autoencoder([16, 2], output_activation="sigmoid", seed=0)
    Z2 = np.random.default_rng(0).normal(size=(50, 2))
    w = code_explorer(model, Z2, np.arange(50) % 3)
    w.children[0].value = float(np.percentile(Z2[:, 0], 90))
    np.testing.assert_allclose(w.result, decode_point(model, [w.children[0].value, w.children[1].value]))
    assert w.result.shape == (4, 4)
    with pytest.raises(ValueError, match="z: expected 2 numbers"):
        decode_point(model, [0.0, 1.0, 2.0])
    plt.close("all")


def test_noise_explorer_reports_psnr_that_falls_with_noise():
    from declib.autoencoder import Autoencoder
    from declib.widgets import noise_explorer

    model = Autoencoder([16, 16], activation="identity", seed=0)
    with __import__("torch").no_grad():
        model.encoder[0].weight.copy_(__import__("torch").eye(16))
        model.encoder[0].bias.zero_()
        model.decoder[0].weight.copy_(__import__("torch").eye(16))
        model.decoder[0].bias.zero_()  # the identity map: denoised = noisy
    X = np.random.default_rng(0).uniform(size=(8, 16)).astype(np.float32)
    w = noise_explorer(model, X)
    w.children[0].value = 0.1
    low_noise = w.result
    w.children[0].value = 0.8
    assert low_noise > w.result > 0
    plt.close("all")


def test_frame_slider_draws_each_frame_on_shared_axes():
    from declib.widgets import frame_slider

    rng = np.random.default_rng(0)
    frames = [rng.normal(size=(30, 2)) * (k + 1) + 5 * k for k in range(3)]  # the points move and spread
    w = frame_slider(frames, np.arange(30) % 3, ["a", "b", "c"])
    limits = []
    for k in (2, 0, 1):
        w.children[0].value = k
        ax = w.result.axes[0]
        drawn = np.concatenate([c.get_offsets() for c in ax.collections])
        np.testing.assert_allclose(np.sort(drawn, axis=0), np.sort(frames[k], axis=0))  # frame k's points
        assert ax.get_title() == "abc"[k]
        limits.append((ax.get_xlim(), ax.get_ylim()))
    assert limits[0] == limits[1] == limits[2]  # the same axes for every frame
    lo, hi = np.percentile(np.concatenate(frames), [1, 99], axis=0)
    assert limits[0][0][0] < lo[0] and limits[0][0][1] > hi[0]
    with pytest.raises(ValueError, match="frames and titles"):
        frame_slider(frames, np.arange(30), ["a"])
    plt.close("all")
