import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from declib.autoencoder import (Autoencoder, as_numpy_mlp, dropout_noise, encode, gaussian_noise, make_noise,
                                masking_noise, psnr, reconstruction_mse, train_autoencoder)
from declib.data import subset
from declib.nn import SGD


def test_architecture_mirrors_the_encoder():
    ae = Autoencoder([784, 500, 500, 2000, 10])
    enc = [m.out_features for m in ae.encoder if isinstance(m, torch.nn.Linear)]
    dec = [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)]
    assert enc == [500, 500, 2000, 10] and dec == [2000, 500, 500, 784]
    assert isinstance(ae.encoder[-1], torch.nn.Linear) and isinstance(ae.decoder[-1], torch.nn.Linear)  # linear z, x̂
    x = torch.rand(3, 784)
    assert ae.encode(x).shape == (3, 10) and ae(x).shape == (3, 784)
    small = Autoencoder([784, 10], output_activation="sigmoid")
    assert isinstance(small.decoder[-1], torch.nn.Sigmoid)


def test_seeded_initialisation_and_paper_init():
    a, b = Autoencoder([20, 5], seed=3), Autoencoder([20, 5], seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = Autoencoder([2000, 500], init_std=0.01, seed=0)
    w = c.encoder[0].weight.detach()
    assert abs(float(w.std()) - 0.01) < 5e-4 and float(c.encoder[0].bias.detach().abs().sum()) == 0


@pytest.mark.parametrize("dims, match", [([784], "dims: expected at least two"), ([784, 0], "dims"),
                                         ([784, 10.5], "dims")])
def test_bad_dims(dims, match):
    with pytest.raises(ValueError, match=match):
        Autoencoder(dims)


def test_bad_activation():
    with pytest.raises(ValueError, match="activation: expected one of"):
        Autoencoder([4, 2], activation="swish")


def test_noise_models():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 50)
    noisy = gaussian_noise(x, 0.5, g)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1 and not torch.equal(noisy, x)
    masked = masking_noise(torch.ones(2000, 50), 0.2, g)
    assert abs(float((masked == 0).float().mean()) - 0.2) < 0.01 and set(masked.unique().tolist()) <= {0.0, 1.0}
    dropped = dropout_noise(torch.ones(2000, 50), 0.2, g)
    assert abs(float(dropped.mean()) - 1.0) < 0.02 and float(dropped.max()) == pytest.approx(1.25)
    a = make_noise("masking", 0.3)(x, torch.Generator().manual_seed(1))
    b = make_noise("masking", 0.3)(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="noise: expected one of"):
        make_noise("salt", 0.1)
    with pytest.raises(ValueError, match="noise level for masking"):
        make_noise("masking", 1.5)


def test_training_reduces_the_loss_and_is_seeded():
    X = np.random.default_rng(0).uniform(size=(600, 30)).astype(np.float32)
    runs = []
    for _ in range(2):
        ae = Autoencoder([30, 8], seed=0)
        h = train_autoencoder(ae, X, epochs=5, batch_size=64, lr=1e-2, X_val=X[:100], device="cpu", seed=1,
                              progress=False, noise=("masking", 0.1))
        runs.append((h, ae))
    h = runs[0][0]
    assert len(h["loss"]) == 5 and len(h["val_loss"]) == 5 and h["loss"][-1] < h["loss"][0]
    assert runs[0][0]["loss"] == runs[1][0]["loss"]
    assert all(torch.equal(p, q) for p, q in zip(runs[0][1].parameters(), runs[1][1].parameters()))


def test_iterations_and_lr_decay(record_lr):
    X = np.random.default_rng(0).uniform(size=(100, 6)).astype(np.float32)
    rates = record_lr(torch.optim.SGD)
    h = train_autoencoder(Autoencoder([6, 2], seed=0), X, iterations=7, batch_size=32, optimizer="sgd", lr=0.1,
                          lr_decay_every=3, device="cpu", progress=False)
    assert len(h["loss"]) == 2  # 4 steps per epoch: one full epoch, then the 3 remaining steps
    assert rates == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001])  # × 0.1 every 3 steps


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 1, "iterations": 5}, ValueError, "exactly one"),
        ({}, ValueError, "exactly one"),
        ({"epochs": 1, "optimizer": "rmsprop"}, ValueError, "optimizer: expected"),
        ({"epochs": 1, "lr": -1.0}, ValueError, "lr: expected"),
        ({"epochs": 0}, ValueError, "epochs: expected an integer >= 1, got 0"),
        ({"iterations": 0}, ValueError, "iterations: expected an integer >= 1, got 0"),
        ({"epochs": 1.5}, TypeError, "epochs: expected an integer"),
        ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
        ({"epochs": 1, "batch_size": "64"}, TypeError, "batch_size"),
        ({"epochs": 1, "seed": -1}, ValueError, "seed"),
    ],
)
def test_training_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_autoencoder(Autoencoder([6, 2]), np.zeros((10, 6), np.float32), device="cpu", progress=False, **kwargs)


def test_training_data_errors():
    ae = Autoencoder([6, 2])
    with pytest.raises(ValueError, match="X: contains NaN"):
        train_autoencoder(ae, np.full((10, 6), np.nan, np.float32), epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="X: expected 6 features"):
        train_autoencoder(ae, np.zeros((10, 5), np.float32), epochs=1, device="cpu", progress=False)


def test_one_step_in_numpy_equals_torch(mnist):
    """The backprop of notebook 02 trains the same autoencoder: one SGD step gives the same weights as torch."""
    X, _ = mnist
    batch = X[:256]
    ae = Autoencoder([784, 10], activation="relu", embedding_activation="relu", output_activation="sigmoid", seed=0)
    mlp = as_numpy_mlp(ae)
    opt = torch.optim.SGD(ae.parameters(), lr=0.5)
    x = torch.from_numpy(batch)
    loss = torch.nn.functional.mse_loss(ae(x), x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    np_loss = mlp.compute_loss(batch.astype(np.float64), batch.astype(np.float64))
    SGD(mlp.params, lr=0.5).step(mlp.backward(batch.astype(np.float64)))
    assert np_loss == pytest.approx(float(loss.detach()), rel=1e-6)
    after = as_numpy_mlp(ae).params
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(mlp.params[name], after[name], atol=1e-6, err_msg=name)


def test_numpy_bridge_needs_one_hidden_layer():
    with pytest.raises(ValueError, match="one-hidden-layer"):
        as_numpy_mlp(Autoencoder([784, 500, 10]))


def test_linear_autoencoder_matches_pca(mnist):
    """A linear 784→10→784 autoencoder learns the principal subspace: its test MSE is PCA-10's within 2%."""
    X, y = mnist
    X_train, _ = subset(X[:60000], y[:60000], 10_000, seed=0)
    X_test = X[60000:]
    pca = PCA(10).fit(X_train)
    pca_mse = float(((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).mean())
    ae = Autoencoder([784, 10], activation="identity", seed=0)
    train_autoencoder(ae, X_train, epochs=30, batch_size=256, lr=3e-3, device="cpu", progress=False)
    ae_mse = reconstruction_mse(ae, X_test)
    assert ae_mse <= 1.02 * pca_mse, (ae_mse, pca_mse)
    assert encode(ae, X_test[:5]).shape == (5, 10)


def test_psnr():
    clean = np.zeros((2, 4))
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)
    assert psnr(clean, clean) == float("inf")
    with pytest.raises(ValueError, match="same shape"):
        psnr(clean, np.zeros(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_path_trains_like_the_eager_path():
    X = np.random.default_rng(0).uniform(size=(3000, 64)).astype(np.float32)
    results, graph_steps = {}, {}
    for graph in (False, True):
        ae = Autoencoder([64, 32, 8], seed=0)
        h = train_autoencoder(ae, X, epochs=4, batch_size=256, optimizer="sgd", lr=0.1, lr_decay_every=20,
                              device="cuda", seed=0, progress=False, cuda_graph=graph, noise=("dropout", 0.2))
        results[graph] = (h["loss"], [p.detach().cpu() for p in ae.parameters()])
        graph_steps[graph] = h.get("graph_steps", [0, 0, 0, 0])
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-4)
    for p, q in zip(results[True][1], results[False][1]):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5)
    # 12 steps per epoch (11 full batches and one of 184 rows, always eager): every full batch but the first
    # three (the warm-up) is replayed, and the re-captures after each rate change cost no step
    assert graph_steps[True] == [8, 11, 11, 11] and graph_steps[False] == [0, 0, 0, 0]


def test_cuda_graph_off_cuda_warns_and_records_no_graph_steps():
    X = np.random.default_rng(0).uniform(size=(100, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match="cuda_graph=True ignored: a CUDA graph needs device 'cuda'"):
        h = train_autoencoder(Autoencoder([6, 2]), X, epochs=3, batch_size=32, device="cpu", progress=False,
                              cuda_graph=True)
    assert h["graph_steps"] == [0, 0, 0] and len(h["loss"]) == 3
    assert "graph_steps" not in train_autoencoder(Autoencoder([6, 2]), X, epochs=1, device="cpu", progress=False)
