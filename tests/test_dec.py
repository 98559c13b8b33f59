import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
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


def blobs(n, centers, features, seed, std=1.0, unit=True):
    X, y = make_blobs(n_samples=n, centers=centers, n_features=features, cluster_std=std, random_state=seed)
    if unit:
        X = (X - X.min()) / (X.max() - X.min())
    return X.astype(np.float32), y


def test_dec_improves_on_its_kmeans_start_and_lowers_kl_while_p_is_fixed():
    """Overlapping blobs (std 2.5), where k-means on the initial embedding is 0.91 right: DEC must do better than its
    own start, and between two refreshes (P held fixed) every interval of training must lower KL(P‖Q) — a loop that
    did nothing would fail both."""
    X, y = blobs(1500, 6, 8, seed=0, std=2.5, unit=False)
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    q_at_refresh = []
    dec = DEC(encoder, n_clusters=6, n_init=5, max_iter=600, update_interval=50, tol=0.0, device="cpu",
              progress=False).fit(X, y, callback=lambda it, m: q_at_refresh.append(m._q_all(torch.from_numpy(X))))
    assert dec.labels_.shape == (1500,) and dec.cluster_centers_.shape == (6, 4)
    assert len(q_at_refresh) == len(dec.history_["acc"]) == len(dec.history_["changed"]) == 13
    np.testing.assert_array_equal(dec.predict(X), dec.labels_)
    start, end = cluster_accuracy(y, dec.init_labels_), cluster_accuracy(y, dec.labels_)
    assert dec.history_["acc"][0] == start and end >= start + 0.05 and end > 0.95
    falls = []
    for q_before, q_after in zip(q_at_refresh, q_at_refresh[1:]):
        p = target_distribution(q_before)  # the target held fixed during this interval
        falls.append(float(kl_divergence(p, q_after)) / float(kl_divergence(p, q_before)))
    assert max(falls) < 0.98 and falls[0] < 0.85, falls


def test_dec_is_seeded():
    X, _ = blobs(400, 3, 5, seed=1, unit=False)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        enc = torch.nn.Sequential(torch.nn.Linear(5, 3))
        runs.append(DEC(enc, 3, max_iter=100, update_interval=20, device="cpu", progress=False, seed=4).fit(X))
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
    np.testing.assert_array_equal(runs[0].cluster_centers_, runs[1].cluster_centers_)


def test_tol_stops_training_at_the_first_refresh_with_few_changes():
    """The stopping rule: at each refresh after the first, stop when the fraction of changed labels is below tol."""
    X, _ = blobs(600, 4, 6, seed=5, std=2.0, unit=False)
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    never = DEC(copy.deepcopy(enc), 4, max_iter=400, update_interval=20, tol=0.0, device="cpu", progress=False).fit(X)
    changed = never.history_["changed"]
    tol = 0.01
    first = next(i for i in range(1, len(changed)) if changed[i] < tol)  # the refresh where tol=0.01 must stop
    assert 1 <= first < len(changed) - 1  # it does stop early on this problem
    stopped = DEC(copy.deepcopy(enc), 4, max_iter=400, update_interval=20, tol=tol, device="cpu",
                  progress=False).fit(X)
    assert stopped.n_iter_ == never.history_["iteration"][first] < never.n_iter_
    assert stopped.history_["changed"] == changed[: first + 1]


def test_idec_keeps_the_decoder_training():
    X, _ = blobs(300, 3, 6, seed=2)
    torch.manual_seed(0)
    enc, dec = torch.nn.Linear(6, 2), torch.nn.Linear(2, 6)
    before = dec.weight.detach().clone()
    model = DEC(enc, 3, decoder=dec, gamma=0.1, max_iter=50, update_interval=10, device="cpu", progress=False).fit(X)
    assert not torch.equal(before, model.decoder.weight.detach())


def test_estimator_contract_params_clone_and_fit_returns_self():
    torch.manual_seed(0)
    dec = DEC(torch.nn.Linear(4, 2), 3, lr=0.05, max_iter=20, update_interval=10, device="cpu", progress=False)
    params = dec.get_params()
    assert params["lr"] == 0.05 and params["n_clusters"] == 3 and params["encoder"] is dec.encoder
    twin = clone(dec)  # scikit-learn's clone: same hyperparameters, a deep copy of the encoder, not fitted
    assert twin.get_params()["lr"] == 0.05 and twin.encoder is not dec.encoder and twin.centroids is None
    assert torch.equal(twin.encoder.weight, dec.encoder.weight)
    X, _ = blobs(100, 3, 4, seed=6)
    triplet = clone(twin)
    np.testing.assert_array_equal(twin.fit(X).labels_, triplet.fit(X).labels_)  # the same start, the same run
    assert dec.fit(X) is dec and dec.set_params(lr=0.1) is dec and dec.lr == 0.1
    with pytest.raises(ValueError, match="momentumm: not a parameter of DEC"):
        dec.set_params(momentumm=0.5)


@pytest.mark.parametrize(
    "params, fit_kwargs, error, match",
    [
        ({"n_clusters": 11}, {}, ValueError, "n_clusters: expected at most the number of samples \\(10\\)"),
        ({"n_clusters": 0}, {}, ValueError, "n_clusters: expected an integer >= 1"),
        ({"n_clusters": 2.0}, {}, TypeError, "n_clusters: expected an integer"),
        ({"n_clusters": np.int64(2), "in_features": 5}, {}, ValueError, "X: expected 5 features"),
        ({"n_clusters": 2}, {"init_centroids": np.zeros((2, 3))}, ValueError,
         "init_centroids: expected shape \\(2, 2\\)"),
        ({"n_clusters": 2, "update_interval": 0}, {}, ValueError, "update_interval"),
        ({"n_clusters": 2, "optimizer": "lbfgs"}, {}, ValueError, "optimizer"),
        ({"n_clusters": 2, "alpha": 0}, {}, ValueError, "alpha"),
        ({"n_clusters": 2, "tol": -0.1}, {}, ValueError, "tol"),
        ({"n_clusters": 2, "seed": "a"}, {}, TypeError, "seed"),
    ],
)
def test_bad_input(params, fit_kwargs, error, match):
    X = np.random.default_rng(0).uniform(size=(10, 4)).astype(np.float32)
    params = dict(params)
    encoder = torch.nn.Linear(params.pop("in_features", 4), 2)
    with pytest.raises(error, match=match):
        DEC(encoder, device="cpu", progress=False, n_init=1, **params).fit(X, **fit_kwargs)


def test_nan_input_and_unfitted_predict():
    with pytest.raises(ValueError, match="X: contains NaN"):
        DEC(torch.nn.Linear(2, 2), 2, device="cpu", progress=False).fit(np.array([[np.nan, 0.0], [1.0, 1.0]],
                                                                                  np.float32))
    with pytest.raises(RuntimeError, match="not fitted"):
        DEC(torch.nn.Linear(2, 2), 2).predict(np.zeros((3, 2), np.float32))


def test_max_iter_is_respected():
    X, _ = blobs(300, 3, 4, seed=3, unit=False)
    torch.manual_seed(0)
    d = DEC(torch.nn.Linear(4, 2), 3, max_iter=30, update_interval=20, tol=0.0, device="cpu", progress=False).fit(X)
    assert d.n_iter_ == 30 and d.history_["iteration"] == [0, 20, 30]


def test_callback_sees_every_refresh():
    X, _ = blobs(200, 3, 4, seed=4, unit=False)
    seen = []
    torch.manual_seed(0)
    DEC(torch.nn.Linear(4, 2), 3, max_iter=40, update_interval=10, tol=0.0, device="cpu",
        progress=False).fit(X, callback=lambda it, m: seen.append(it))
    assert seen == [0, 10, 20, 30, 40]


def test_bf16_and_augmented_fits_run_and_keep_float32_centroids():
    X, y = blobs(600, 4, 16, seed=2)
    calls = []

    def augment(x, generator=None):
        calls.append(len(x))
        return x + 0.01 * torch.randn(x.shape, generator=generator, dtype=x.dtype)

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    dec = DEC(encoder, n_clusters=4, n_init=3, max_iter=120, update_interval=40, tol=0, device="cpu", progress=False,
              precision="bf16", augment=augment, batch_size=64).fit(X)
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
