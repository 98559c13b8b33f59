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


def test_kmeans_stepper_follows_the_slider(fitted):
    X, km = fitted
    w = kmeans_stepper(X, km.history_)
    slider = w.children[0]
    assert slider.max == km.n_iter_ and w.result == km.history_["wss"][0]
    slider.value = km.n_iter_
    assert w.result == km.history_["wss"][-1]
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


def test_frame_slider_shows_the_chosen_frame():
    from declib.widgets import frame_slider

    frames = [np.random.default_rng(k).normal(size=(30, 2)) for k in range(3)]
    w = frame_slider(frames, np.arange(30) % 3, ["a", "b", "c"])
    w.children[0].value = 2
    assert w.result == 2 and w.children[0].max == 2
    with pytest.raises(ValueError, match="frames and titles"):
        frame_slider(frames, np.arange(30), ["a"])
    plt.close("all")
