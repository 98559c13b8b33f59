"""The manifold step (UMAP, then a Gaussian mixture): it separates curved clusters that k-means cannot."""

import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_moons

from declib.kmeans import KMeans
from declib.manifold import ManifoldGMM, umap_embedding
from declib.metrics import ari


@pytest.fixture(scope="module")
def moons():
    """Two interleaved half-moons in 5-d (3 noise dimensions): no straight cut separates them."""
    X, y = make_moons(n_samples=1200, noise=0.05, random_state=0)
    rng = np.random.default_rng(0)
    return np.hstack([X, 0.05 * rng.standard_normal((len(X), 3))]).astype(np.float32), y


def test_manifold_step_separates_curved_clusters_that_kmeans_cannot(moons):
    X, y = moons
    kmeans_ari = ari(y, KMeans(2, n_init=10, seed=0).fit(X).labels_)
    model = ManifoldGMM(2, n_neighbors=15, seed=0).fit(X)
    assert kmeans_ari < 0.6  # k-means cuts each moon in half
    assert ari(y, model.labels_) > 0.95
    assert model.embedding_.shape == (len(X), 2)  # n_components defaults to K
    assert np.isfinite(model.bic_) and model.seconds_ >= model.umap_seconds_ > 0
    assert (model.predict(X[:50]) == model.labels_[:50]).mean() > 0.9


def test_same_seed_same_clusters_and_sklearn_clone(moons):
    X, _ = moons
    a = ManifoldGMM(2, n_components=3, n_neighbors=10, seed=3).fit(X)
    b = clone(a).fit(X)
    assert b.get_params() == a.get_params() and b.n_components == 3
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    assert umap_embedding(X[:300], 2, n_neighbors=10, seed=1).shape == (300, 2)


@pytest.mark.parametrize("kwargs, data, exc, message", [
    ({"n_neighbors": 50}, 30, ValueError, "n_neighbors: expected fewer than the number of samples"),
    ({"n_clusters": 40}, 30, ValueError, "n_clusters: expected at most the number of samples"),
    ({"covariance_type": "round"}, 100, ValueError, "covariance_type: expected one of"),
    ({"min_dist": -1.0}, 100, ValueError, "min_dist"),
    ({"n_neighbors": 2.5}, 100, TypeError, "n_neighbors: expected an integer"),
])
def test_bad_arguments_name_themselves(kwargs, data, exc, message):
    X = np.random.default_rng(0).standard_normal((data, 4))
    with pytest.raises(exc, match=message):
        ManifoldGMM(**{"n_clusters": 2, **kwargs}).fit(X)


def test_bad_data_is_refused():
    X = np.random.default_rng(0).standard_normal((100, 4))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="Z"):
        ManifoldGMM(2).fit(X)
    with pytest.raises(Exception, match="fit"):
        ManifoldGMM(2).predict(X)


def test_without_umap_learn_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap now raises ImportError
    with pytest.raises(ImportError, match="pip install umap-learn"):
        ManifoldGMM(2).fit(np.random.default_rng(0).standard_normal((100, 4)))
