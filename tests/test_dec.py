import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from declib.dec import DEC, kl_divergence, kl_gradients, soft_assignment, target_distribution
from declib.metrics import cluster_accuracy


def random_problem(seed, n=40, K=5, D=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, D, generator=g, dtype=dtype)
    mu = torch.randn(K, D, generator=g, dtype=dtype)
    return z, mu


def test_soft_assignment_is_student_t_and_normalised():
    z, mu = random_problem(0)
    q = soft_assignment(z, mu, alpha=1.0)
    assert torch.allclose(q.sum(1), torch.ones(len(z), dtype=q.dtype))
    i, j = 3, 2
    kernel = lambda k: 1.0 / (1.0 + ((z[i] - mu[k]) ** 2).sum())  # noqa: E731
    assert float(q[i, j]) == pytest.approx(float(kernel(j) / sum(kernel(k) for k in range(len(mu)))), rel=1e-12)
    q2 = soft_assignment(z, mu, alpha=2.0)  # (1 + d/2)^(-3/2)
    k2 = lambda k: (1.0 + ((z[i] - mu[k]) ** 2).sum() / 2) ** -1.5  # noqa: E731
    assert float(q2[i, j]) == pytest.approx(float(k2(j) / sum(k2(k) for k in range(len(mu)))), rel=1e-12)


def test_target_distribution_sharpens_and_balances():
    q = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.2, 0.8]], dtype=torch.float64)
    p = target_distribution(q)
    assert torch.allclose(p.sum(1), torch.ones(4, dtype=p.dtype))
    assert float(p[3, 1]) > 0.8  # squaring sharpens a confident row
    f = q.sum(0)
    w = q**2 / f
    assert torch.allclose(p, w / w.sum(1, keepdim=True))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_kl_gradients_equal_autograd(seed, alpha):
    z, mu = random_problem(seed)
    p = target_distribution(soft_assignment(z, mu + 0.3, alpha)).detach()
    z.requires_grad_(True)
    mu.requires_grad_(True)
    kl_divergence(p, soft_assignment(z, mu, alpha)).backward()
    grad_z, grad_mu = kl_gradients(z.detach(), mu.detach(), p, alpha)
    torch.testing.assert_close(grad_z, z.grad, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(grad_mu, mu.grad, rtol=1e-6, atol=1e-12)


def test_dec_on_blobs_any_shape_and_k():
    X, y = make_blobs(n_samples=1500, centers=6, n_features=8, cluster_std=1.0, random_state=0)
    X = ((X - X.min()) / (X.max() - X.min())).astype(np.float32)
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    dec = DEC(encoder, n_clusters=6).fit(X, y, n_init=5, max_iter=600, update_interval=50, device="cpu",
                                          progress=False)
    assert dec.labels_.shape == (1500,) and dec.cluster_centers_.shape == (6, 4)
    assert len(dec.history_["acc"]) == len(dec.history_["changed"]) >= 2
    np.testing.assert_array_equal(dec.predict(X), dec.labels_)
    assert cluster_accuracy(y, dec.labels_) > 0.8


def test_dec_is_seeded():
    X, _ = make_blobs(n_samples=400, centers=3, n_features=5, random_state=1)
    X = X.astype(np.float32)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        enc = torch.nn.Sequential(torch.nn.Linear(5, 3))
        runs.append(DEC(enc, 3).fit(X, max_iter=100, update_interval=20, device="cpu", progress=False, seed=4))
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
    np.testing.assert_array_equal(runs[0].cluster_centers_, runs[1].cluster_centers_)


def test_idec_keeps_the_decoder_training():
    X, _ = make_blobs(n_samples=300, centers=3, n_features=6, random_state=2)
    X = ((X - X.min()) / (X.max() - X.min())).astype(np.float32)
    torch.manual_seed(0)
    enc, dec = torch.nn.Linear(6, 2), torch.nn.Linear(2, 6)
    before = dec.weight.detach().clone()
    model = DEC(enc, 3, decoder=dec, gamma=0.1).fit(X, max_iter=50, update_interval=10, device="cpu",
                                                   progress=False)
    assert not torch.equal(before, model.decoder.weight.detach())


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda: DEC(torch.nn.Linear(4, 2), 11), {}, "n_clusters: expected at most the number of samples \\(10\\)"),
        (lambda: DEC(torch.nn.Linear(4, 2), 0), None, "n_clusters: expected a positive integer"),
        (lambda: DEC(torch.nn.Linear(5, 2), 2), {}, "X: expected 5 features"),
        (lambda: DEC(torch.nn.Linear(4, 2), 2), {"init_centroids": np.zeros((2, 3))}, "init_centroids: expected shape \\(2, 2\\)"),
        (lambda: DEC(torch.nn.Linear(4, 2), 2), {"update_interval": 0}, "update_interval"),
        (lambda: DEC(torch.nn.Linear(4, 2), 2), {"optimizer": "lbfgs"}, "optimizer"),
    ],
)
def test_bad_input(make, kwargs, match):
    X = np.random.default_rng(0).uniform(size=(10, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        make().fit(X, device="cpu", progress=False, n_init=1, **(kwargs or {}))


def test_nan_input_and_unfitted_predict():
    with pytest.raises(ValueError, match="X: contains NaN"):
        DEC(torch.nn.Linear(2, 2), 2).fit(np.array([[np.nan, 0.0], [1.0, 1.0]], np.float32), device="cpu",
                                           progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        DEC(torch.nn.Linear(2, 2), 2).predict(np.zeros((3, 2), np.float32))


def test_max_iter_is_respected():
    X, _ = make_blobs(n_samples=300, centers=3, n_features=4, random_state=3)
    torch.manual_seed(0)
    d = DEC(torch.nn.Linear(4, 2), 3).fit(X.astype(np.float32), max_iter=30, update_interval=20, tol=0.0,
                                          device="cpu", progress=False)
    assert d.n_iter_ == 30 and d.history_["iteration"] == [0, 20, 30]


def test_callback_sees_every_refresh():
    X, _ = make_blobs(n_samples=200, centers=3, n_features=4, random_state=4)
    seen = []
    torch.manual_seed(0)
    DEC(torch.nn.Linear(4, 2), 3).fit(X.astype(np.float32), max_iter=40, update_interval=10, tol=0.0, device="cpu",
                                      progress=False, callback=lambda it, m: seen.append(it))
    assert seen == [0, 10, 20, 30, 40]


def test_bf16_and_augmented_fits_run_and_keep_float32_centroids():
    X, y = make_blobs(n_samples=600, centers=4, n_features=16, cluster_std=1.0, random_state=2)
    X = ((X - X.min()) / (X.max() - X.min())).astype(np.float32)
    calls = []

    def augment(x, generator=None):
        calls.append(len(x))
        return x + 0.01 * torch.randn(x.shape, generator=generator, dtype=x.dtype)

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    dec = DEC(encoder, n_clusters=4).fit(X, n_init=3, max_iter=120, update_interval=40, tol=0, device="cpu",
                                          progress=False, precision="bf16", augment=augment, batch_size=64)
    assert calls == [64] * dec.n_iter_  # every training batch, never the refreshes of P
    assert dec.centroids.dtype == torch.float32 and dec.cluster_centers_.dtype == np.float32
    assert dec.precision_ in ("bf16", "fp32")  # fp32 where this CPU has no native bfloat16
    assert not dec.training  # predict and fit leave the model in evaluation mode
    dec.predict(X)
    assert not dec.training


def test_kl_divergence_reduction_is_validated():
    p = torch.full((4, 2), 0.5)
    assert float(kl_divergence(p, p, "mean")) == 0.0
    with pytest.raises(ValueError, match="reduction"):
        kl_divergence(p, p, "batchmean")
