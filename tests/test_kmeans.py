import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs

from declib.data import subset
from declib.kmeans import (KMeans, between_sum_of_squares, elbow, find_knee, kmeans_plusplus, random_init,
                           relative_contrast, total_sum_of_squares, within_sum_of_squares)
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
        (np.zeros((5, 2)), {"n_clusters": 2, "init": np.zeros((3, 2))}, ValueError, "init: expected an array of shape \\(2, 2\\)"),
        (np.zeros((5, 2)), {"n_clusters": 2, "tol": -1}, ValueError, "tol: expected a number >= 0"),
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
