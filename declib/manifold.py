r"""A manifold step before clustering: UMAP on the deep embedding, then a Gaussian mixture (N2D's idea).

McConville et al. (2020, "N2D: (Not Too) Deep Clustering via Clustering the Local Manifold of an Autoencoded
Embedding") keep the autoencoder of DEC but replace its clustering stage: the embedding :math:`z_i = f_\theta(x_i)`
is mapped by UMAP to a space of K dimensions, :math:`u_i = \mathrm{UMAP}(z_i) \in \mathbb{R}^K`, where a Gaussian
mixture with full covariances is fitted,

.. math:: p(u) = \sum_{j=1}^{K} \pi_j \, \mathcal{N}(u \mid m_j, \Sigma_j),
          \qquad C(x_i) = \arg\max_j \; \pi_j \, \mathcal{N}(u_i \mid m_j, \Sigma_j).

**Why it helps.** k-means (and DEC's Student's t kernel around centroids μ_j) scores a point by its distance to a
centre, so it finds compact, round clusters. A digit class in the autoencoder's embedding is rather a curved,
stretched sheet (slant, stroke width and style vary continuously within a class), and two such sheets can come
closer at their ends than a sheet is wide. UMAP builds a graph of each point's ``n_neighbors`` nearest neighbours
and lays it out again so that neighbours stay neighbours while points that are not connected are pushed apart:
each sheet contracts to a dense blob (``min_dist = 0`` lets points pack tightly), the gaps between classes widen,
and a mixture of Gaussians — which, unlike k-means, also fits elongated clusters through Σ_j — separates them.
UMAP only needs local neighbourhoods to be right, which is what an autoencoder's embedding gets right.

Notebook 06 §3. UMAP comes from the ``umap-learn`` package (it compiles its kernels with numba on first use, about
ten seconds once per process); the mixture is scikit-learn's ``GaussianMixture``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._util import ParamsMixin, as_float_array, check_choice, check_fitted, check_int, check_number, check_seed

__all__ = ["require_umap", "umap_embedding", "ManifoldGMM"]

UMAP_MISSING = ("the manifold step needs the package umap-learn, which is not installed here. It is one of the "
                "course's dependencies: `python3 course.py setup` (or `pip install umap-learn`, or "
                "`conda install -c conda-forge umap-learn`) installs it")


def require_umap():
    """The ``umap`` module, or an ImportError that says how to install it."""
    try:
        import umap
    except ImportError as exc:  # pragma: no cover - exercised with a blocked import in the tests
        raise ImportError(UMAP_MISSING) from exc
    return umap


def _umap(n_components: int, n_neighbors: int, min_dist: float, seed: int):
    umap = require_umap()
    # A fixed random_state makes UMAP deterministic (and single-threaded: its parallel layout is not reproducible).
    return umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, metric="euclidean",
                     random_state=seed, n_jobs=1, low_memory=True)


def _fit_umap(Z: np.ndarray, n_components, n_neighbors, min_dist, seed):
    """A fitted UMAP and its embedding of ``Z``, the arguments checked first."""
    n_components = check_int(n_components, "n_components", 1)
    n_neighbors = check_int(n_neighbors, "n_neighbors", 2)
    if n_neighbors >= len(Z):
        raise ValueError(f"n_neighbors: expected fewer than the number of samples ({len(Z)}), got {n_neighbors}")
    if n_components >= len(Z) - 1:
        raise ValueError(f"n_components: expected fewer than the number of samples - 1 ({len(Z) - 1}), "
                         f"got {n_components}")
    check_number(min_dist, "min_dist", 0.0)
    reducer = _umap(n_components, n_neighbors, min_dist, check_seed(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs.*")  # "n_jobs overridden by setting random_state"
        return reducer, reducer.fit_transform(Z).astype(np.float32)


def umap_embedding(Z, n_components: int = 2, n_neighbors: int = 20, min_dist: float = 0.0, seed=0) -> np.ndarray:
    """u_i = UMAP(z_i): every row of ``Z`` mapped to ``n_components`` dimensions (float32). Notebook 06 §3."""
    return _fit_umap(as_float_array(Z, "Z", np.float32), n_components, n_neighbors, min_dist, seed)[1]


class ManifoldGMM(ParamsMixin):
    """Cluster an embedding in two steps: UMAP to ``n_components`` dimensions, then a Gaussian mixture of
    ``n_clusters`` components (N2D; the module docstring explains why). Notebook 06 §3.

    Hyperparameters: ``n_clusters`` K; ``n_components`` the UMAP dimension (``None``: K, as N2D); ``n_neighbors``
    (20, N2D's choice for MNIST: the size of the neighbourhood UMAP keeps), ``min_dist`` (0: points may pack
    tightly); ``covariance_type`` of the mixture ("full": any ellipsoid); ``n_init`` EM restarts; ``seed``.

    Fitted attributes: ``labels_`` (the most probable component of every row), ``embedding_`` (u, n ×
    n_components), ``umap_`` and ``gmm_`` (the fitted UMAP and ``sklearn.mixture.GaussianMixture``), ``bic_``
    (the mixture's BIC on u), ``seconds_`` and ``umap_seconds_``.
    """

    def __init__(self, n_clusters: int = 10, *, n_components: int | None = None, n_neighbors: int = 20,
                 min_dist: float = 0.0, covariance_type: str = "full", n_init: int = 1, seed=0):
        self.n_clusters, self.n_components, self.n_neighbors, self.min_dist = (n_clusters, n_components,
                                                                               n_neighbors, min_dist)
        self.covariance_type, self.n_init, self.seed = covariance_type, n_init, seed

    def fit(self, Z, y=None) -> "ManifoldGMM":
        """UMAP on ``Z`` (n × D), then the mixture on the result; ``y`` is ignored. Returns ``self``."""
        from sklearn.mixture import GaussianMixture

        t0 = time.perf_counter()
        Z = as_float_array(Z, "Z", np.float32)
        k = check_int(self.n_clusters, "n_clusters", 1)
        if k > len(Z):
            raise ValueError(f"n_clusters: expected at most the number of samples ({len(Z)}), got {k}")
        dim = k if self.n_components is None else check_int(self.n_components, "n_components", 1)
        check_choice(self.covariance_type, "covariance_type", ("full", "tied", "diag", "spherical"))
        check_int(self.n_init, "n_init", 1)
        seed = check_seed(self.seed)
        self.umap_, self.embedding_ = _fit_umap(Z, dim, self.n_neighbors, self.min_dist, seed)
        self.umap_seconds_ = time.perf_counter() - t0
        self.gmm_ = GaussianMixture(k, covariance_type=self.covariance_type, n_init=self.n_init,
                                    random_state=seed).fit(self.embedding_)
        self.labels_ = self.gmm_.predict(self.embedding_)
        self.bic_ = float(self.gmm_.bic(self.embedding_))
        self.seconds_ = time.perf_counter() - t0
        return self

    def fit_predict(self, Z, y=None) -> np.ndarray:
        """``fit(Z)`` and return ``labels_``."""
        return self.fit(Z).labels_

    def predict(self, Z) -> np.ndarray:
        """The most probable component for new rows of the embedding (UMAP's ``transform``, then the mixture)."""
        check_fitted(self, "gmm_")
        Z = as_float_array(Z, "Z", np.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs.*")
            return self.gmm_.predict(self.umap_.transform(Z).astype(np.float32))
