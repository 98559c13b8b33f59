import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs

from declib.data import subset
from declib._util import numpy_rng
from declib.kmeans import (KMeans, _kmeans_plusplus, between_sum_of_squares, elbow, find_knee, kmeans_plusplus, lloyd,
                           random_init, relative_contrast, total_sum_of_squares, within_sum_of_squares)
from declib.metrics import cluster_accuracy


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=3000, centers=5, n_features=4, cluster_std=1.5, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def mnist_subset(mnist):
    X, y = mnist
    return subset(X, y, 3000, seed=0)


def against_sklearn(X, k, seed):
    init = kmeans_plusplus(X, k, seed=seed)
    ours = KMeans(k, init=init, tol=0.0, max_iter=500, device="cpu").fit(X)
    ref = SKKMeans(k, init=init, n_init=1, tol=0.0, max_iter=500, algorithm="lloyd").fit(X)
    return ours, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_labels_and_inertia_as_sklearn_on_blobs(blobs, seed):
    X, _ = blobs
    ours, ref = against_sklearn(X, 5, seed)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_same_labels_and_inertia_as_sklearn_on_mnist(mnist_subset, seed):
    X, _ = mnist_subset
    ours, ref = against_sklearn(X, 10, seed)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


def test_tss_equals_bss_plus_wss_on_random_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 7)) * rng.uniform(0.1, 10, size=7) + 5
    labels = rng.integers(0, 6, 2000)
    tss, bss, wss = total_sum_of_squares(X), between_sum_of_squares(X, labels), within_sum_of_squares(X, labels)
    assert bss > 0 and wss > 0
    assert bss + wss == pytest.approx(tss, rel=1e-6)


def test_tss_equals_bss_plus_wss_on_mnist(mnist):
    X, _ = mnist
    labels = KMeans(10, n_init=1, max_iter=5, seed=0, device="cpu").fit_predict(X)
    tss, bss, wss = total_sum_of_squares(X), between_sum_of_squares(X, labels), within_sum_of_squares(X, labels)
    assert bss + wss == pytest.approx(tss, rel=1e-6)


def test_inertia_is_wss_of_final_centroids(blobs):
    X, _ = blobs
    km = KMeans(5, seed=0, device="cpu").fit(X)
    assert km.inertia_ == pytest.approx(within_sum_of_squares(X, km.labels_, km.cluster_centers_), rel=1e-5)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-5)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    dist = km.transform(X)
    np.testing.assert_array_equal(dist.argmin(axis=1), km.labels_)
    assert dist.shape == (len(X), 5)


def test_finds_the_blobs_and_is_seeded(blobs):
    X, y = blobs
    a = KMeans(5, seed=3, device="cpu").fit(X)
    b = KMeans(5, seed=3, device="cpu").fit(X)
    assert cluster_accuracy(y, a.labels_) > 0.95
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


def test_history_and_wss_never_increases(blobs):
    X, _ = blobs
    km = KMeans(5, init="random", n_init=1, seed=1, device="cpu").fit(X)
    wss = np.array(km.history_["wss"])
    assert len(wss) == km.n_iter_ == len(km.history_["centers"]) == len(km.history_["shift"])
    assert np.all(np.diff(wss) <= 1e-6 * wss[0])
    assert km.inertia_ <= wss[-1] * (1 + 1e-6)


def test_stopping_rules():
    X, _ = make_blobs(n_samples=2000, centers=8, n_features=2, random_state=1)
    capped = KMeans(8, init="random", n_init=1, max_iter=2, tol=0, seed=0, device="cpu").fit(X)
    assert capped.n_iter_ == 2
    loose = KMeans(8, init="random", n_init=1, tol=1e-1, seed=0, device="cpu").fit(X)
    strict = KMeans(8, init="random", n_init=1, tol=0, seed=0, device="cpu").fit(X)
    assert loose.n_iter_ < strict.n_iter_
    eps = 1e-1 * X.var(axis=0).mean()
    assert loose.history_["shift"][-1] <= eps < min(loose.history_["shift"][:-1])


def test_kmeans_plusplus_spreads_centroids():
    X, _ = make_blobs(n_samples=5000, centers=10, cluster_std=0.3, random_state=2)
    covered_pp = [len(np.unique(SKKMeans(10, init=kmeans_plusplus(X, 10, seed=s), n_init=1, max_iter=1).fit(X)
                                .labels_)) for s in range(5)]
    wss = lambda C: ((X[:, None] - C[None]) ** 2).sum(-1).min(1).sum()
    pp = np.mean([wss(kmeans_plusplus(X, 10, seed=s)) for s in range(20)])
    rnd = np.mean([wss(random_init(X, 10, seed=s)) for s in range(20)])
    assert pp < 0.5 * rnd and min(covered_pp) == 10
    C = kmeans_plusplus(X, 10, seed=0)
    assert len({tuple(c) for c in C}) == 10  # distinct points of X
    assert all((np.abs(X - c).sum(1) == 0).any() for c in C)


def test_empty_cluster_is_reseeded_deterministically():
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1]])
    init = np.array([[0.1], [10.0], [100.0]])  # the third centroid attracts no point
    a = KMeans(3, init=init, device="cpu").fit(X)
    b = KMeans(3, init=init, device="cpu").fit(X)
    assert len(np.unique(a.labels_)) == 3
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_fewer_distinct_points_than_clusters():
    X = np.zeros((5, 2))
    km = KMeans(3, seed=0, device="cpu").fit(X)
    assert km.inertia_ == 0.0


def test_elbow_and_knee():
    X, _ = make_blobs(n_samples=1500, centers=4, cluster_std=0.6, random_state=0)
    ks = list(range(1, 10))
    wss = elbow(X, ks, n_init=2, seed=0, device="cpu")
    assert np.all(np.diff(wss) < 0)
    assert find_knee(ks, wss) == 4
    assert find_knee([1, 2, 3, 4, 5], [100, 20, 15, 12, 10]) == 2


def test_distance_concentration_grows_with_dimension():
    rng = np.random.default_rng(0)
    low = relative_contrast(rng.uniform(size=(1000, 2)), seed=0)
    high = relative_contrast(rng.uniform(size=(1000, 784)), seed=0)
    assert high < 0.5 < low


@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (np.zeros((5, 2)), {"n_clusters": 6}, ValueError, "n_clusters: expected at most n_samples = 5"),
        (np.zeros((5, 2)), {"n_clusters": 0}, ValueError, "n_clusters: expected an integer >= 1"),
        (np.zeros((5, 2)), {"n_clusters": 2.5}, TypeError, "n_clusters: expected an integer"),
        (np.array([[0.0, np.nan], [1, 1]]), {"n_clusters": 1}, ValueError, "X: contains NaN"),
        (np.array([[0.0, np.inf], [1, 1]]), {"n_clusters": 1}, ValueError, "X: contains NaN or infinity"),
        (np.zeros(5), {"n_clusters": 1}, ValueError, "X: expected a 2-D array"),
        (np.zeros((0, 3)), {"n_clusters": 1}, ValueError, "X: expected at least one sample"),
        (np.zeros((5, 2)), {"n_clusters": 2, "init": "kmeans"}, ValueError, "init: expected 'k-means\\+\\+'"),
        (np.zeros((5, 2)), {"n_clusters": 2, "init": np.zeros((3, 2))}, ValueError,
         "init: expected an array of shape \\(2, 2\\)"),
        (np.zeros((5, 2)), {"n_clusters": 2, "tol": -1}, ValueError, "tol: expected a finite number in \\[0, inf\\)"),
        (np.zeros((5, 2)), {"n_clusters": 2, "n_init": 0}, ValueError, "n_init: expected an integer >= 1"),
        (np.array([["a", "b"]]), {"n_clusters": 1}, TypeError, "X: expected a numeric array"),
    ],
)
def test_bad_input(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        KMeans(device="cpu", **kwargs).fit(X)


def test_predict_checks():
    km = KMeans(2, device="cpu")
    with pytest.raises(RuntimeError, match="not fitted"):
        km.predict(np.zeros((2, 2)))
    km.fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="X: expected 2 features"):
        km.predict(np.zeros((2, 3)))


def test_torch_input_and_float64(blobs):
    X, _ = blobs
    a = KMeans(5, seed=0, device="cpu").fit(torch.from_numpy(X))
    b = KMeans(5, seed=0, device="cpu").fit(X.astype(np.float64))
    assert a.cluster_centers_.dtype == np.float32 and b.cluster_centers_.dtype == np.float64
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu(blobs):
    X, _ = blobs
    init = kmeans_plusplus(X, 5, seed=0)
    cpu = KMeans(5, init=init, device="cpu").fit(X)
    gpu = KMeans(5, init=init, device="cuda").fit(X)
    np.testing.assert_array_equal(cpu.labels_, gpu.labels_)


@pytest.mark.parametrize("tol", [1e-3, 0.0])  # runs stop by the shift rule, or only when no label changes
def test_lockstep_runs_equal_independent_fits(blobs, tol):
    """The README's claim: n_init runs done in lockstep give exactly the runs of independent fits, even when runs
    stop at different iterations and leave the batch. In float64: in float32 the distance block's rounding depends
    on its width (R·K columns), and with tol=0 one of these runs then assigns a tied point differently."""
    X = blobs[0].astype(np.float64)
    Xt = torch.from_numpy(X)
    x_sq = (Xt * Xt).sum(1)
    inits = _kmeans_plusplus(Xt, x_sq, 8, numpy_rng(3), n_runs=6)
    engine = KMeans(8, tol=tol, max_iter=100, device="cpu")
    eps = tol * float(Xt.double().var(dim=0).mean())
    finals, n_iters, histories = engine._lloyd(Xt, x_sq, inits, eps)
    assert len(set(n_iters)) > 1  # the runs really do stop at different times
    for r in range(6):
        alone = KMeans(8, init=inits[r].numpy(), tol=tol, max_iter=100, device="cpu").fit(X)
        assert alone.n_iter_ == n_iters[r]
        np.testing.assert_array_equal(alone.cluster_centers_, finals[r].numpy())
        for a, b in zip(alone.history_["centers"], histories[r]["centers"]):
            np.testing.assert_array_equal(a, b)  # the same centroids at every step
        # the WSS is summed from one distance block per pass, whose float32 rounding depends on its width (R·K)
        np.testing.assert_allclose(alone.history_["wss"], histories[r]["wss"], rtol=1e-6)
    best = KMeans(8, n_init=6, seed=3, tol=tol, max_iter=100, device="cpu").fit(X)
    r_best = int(np.argmin([within_sum_of_squares(X, KMeans(8, init=f.numpy(), max_iter=1).fit(X).labels_, f.numpy())
                            for f in finals]))
    np.testing.assert_array_equal(best.cluster_centers_, finals[r_best].numpy())


@pytest.mark.parametrize("t", [1e-2, 1e-3])
def test_sklearn_tol_t_is_ours_with_tol_t_over_k(t):
    """scikit-learn stops when the *sum* of squared centroid shifts is ≤ t·mean variance; we use the mean, so its
    tol=t is our tol=t/K: the same iteration count and centroids from the same start."""
    X, _ = make_blobs(n_samples=3000, centers=12, n_features=2, cluster_std=2.5, random_state=1)  # slow to settle
    k = 6
    init = kmeans_plusplus(X, k, seed=4)
    ref = SKKMeans(k, init=init, n_init=1, tol=t, max_iter=300, algorithm="lloyd").fit(X)
    ours = KMeans(k, init=init, tol=t / k, max_iter=300, device="cpu").fit(X)
    same_t = KMeans(k, init=init, tol=t, max_iter=300, device="cpu").fit(X)
    assert ours.n_iter_ == ref.n_iter_ < 300
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10, atol=1e-10)
    assert same_t.n_iter_ < ref.n_iter_  # tol=t unscaled would stop earlier: the rule really differs by K


@pytest.mark.parametrize("seed", [0, 1])
def test_plain_lloyd_equals_the_engine(blobs, seed):
    X, _ = blobs
    X = X.astype(np.float64)
    init = random_init(X, 7, seed=seed)
    centers, labels, n_iter = lloyd(X, init, max_iter=200, tol=1e-4)
    km = KMeans(7, init=init, tol=1e-4, max_iter=200, device="cpu").fit(X)
    assert n_iter == km.n_iter_
    np.testing.assert_allclose(centers, km.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(labels, km.labels_)


def test_plain_lloyd_reseeds_an_empty_cluster_like_the_engine():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    init = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])  # the third centroid attracts nobody
    centers, labels, n_iter = lloyd(X, init)
    km = KMeans(3, init=init, device="cpu").fit(X)
    np.testing.assert_allclose(centers, km.cluster_centers_)
    np.testing.assert_array_equal(labels, km.labels_)
    assert len(np.unique(labels)) == 3 and n_iter == km.n_iter_


def test_kmeans_get_params_and_clone():
    km = KMeans(4, n_init=2, seed=np.int64(5), device="cpu")
    assert km.get_params()["seed"] == 5 and km.get_params()["n_init"] == 2
    twin = clone(km)
    assert twin.get_params() == km.get_params() and not hasattr(twin, "cluster_centers_")
    X, _ = make_blobs(n_samples=200, centers=4, random_state=0)
    np.testing.assert_array_equal(km.fit(X).labels_, twin.fit(X).labels_)
    assert km.set_params(n_clusters=3).fit(X).cluster_centers_.shape == (3, 2)
