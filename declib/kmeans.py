r"""k-means as the lecture gives it: Lloyd's algorithm, k-means++, the sums of squares and the elbow method.

Notation. Data points :math:`x_i \in \mathbb{R}^d` (:math:`i = 1..n`), centroids :math:`m_j` (:math:`j = 1..K`),
clusters :math:`S_j`, assignment :math:`C(x_i)`. Lloyd's algorithm repeats two steps until a stopping rule fires:

1. assignment: :math:`C(x_i) = \arg\min_j \lVert x_i - m_j \rVert^2`;
2. update: :math:`m_j = \frac{1}{|S_j|} \sum_{i \in S_j} x_i`.

Each step can only lower the within-cluster sum of squares :math:`\mathrm{WSS} = \sum_j \sum_{i \in S_j}
\lVert x_i - m_j \rVert^2`, so the algorithm stops, at a local minimum. Two stopping rules (the lecture's):

* the iteration cap ``max_iter`` (epochs);
* the mean squared centroid shift :math:`\frac{1}{K} \sum_j \lVert m_j^{(t+1)} - m_j^{(t)} \rVert^2 \le
  \varepsilon`, with :math:`\varepsilon = \mathrm{tol} \cdot \frac{1}{d} \sum_k \operatorname{Var}(x_{\cdot k})`,
  i.e. ``tol`` is relative to the data's mean per-feature variance, so it does not depend on the data's scale.
  scikit-learn's rule sums the shifts instead of averaging them: its ``tol=t`` is ours with ``tol=t/K``.

The algorithm also stops as soon as no assignment changes (then no centroid can move any more). Distances are computed
as :math:`\lVert x \rVert^2 - 2 x^\top m + \lVert m \rVert^2` with one matrix product per chunk of rows, so memory
stays bounded for n = 70,000, and the same code runs on the CPU and on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ._util import ParamsMixin, as_float_array, as_float_tensor, check_fitted, check_int, check_number, numpy_rng
from .config import resolve_device

__all__ = [
    "KMeans",
    "lloyd",
    "kmeans_plusplus",
    "random_init",
    "total_sum_of_squares",
    "within_sum_of_squares",
    "between_sum_of_squares",
    "elbow",
    "find_knee",
    "relative_contrast",
]

_CHUNK_ELEMENTS = 1 << 22  # rows per chunk × centroids: bounds the distance block's memory (16 MiB in float32)


# ---------------------------------------------------------------------------------------------- the two steps
def _sq_norms(X: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,ij->i", X, X)


def _chunk_rows(X: torch.Tensor, width: int) -> int:
    """Rows per chunk: on the CPU small enough that a chunk of X stays in cache between the two steps."""
    if X.device.type == "cpu":
        return 1024
    return max(1024, _CHUNK_ELEMENTS // max(width, 1))


def _lloyd_pass(X: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, with_sums: bool = True):
    """One pass over X for R runs at once: the assignment step, and the sums the update step needs.

    ``centers`` has shape (R, K, d). Returns ``labels`` (n, R), squared distances ``dist`` (n, R), and when
    ``with_sums`` the per-cluster sums (R, K, d) and sizes (R, K). Each chunk of X is read once from memory and
    serves all R runs and both steps.
    """
    n, d = X.shape
    R, K, _ = centers.shape
    flat = centers.reshape(R * K, d)
    c_sq = _sq_norms(flat)
    labels = torch.empty(n, R, dtype=torch.int64, device=X.device)
    dist = torch.empty(n, R, dtype=X.dtype, device=X.device)
    sums = torch.zeros(R, K, d, dtype=X.dtype, device=X.device) if with_sums else None
    offsets = torch.arange(R, device=X.device) * K
    step = _chunk_rows(X, R * K)
    for s in range(0, n, step):
        xb = X[s : s + step]
        block = torch.addmm(c_sq, xb, flat.T, alpha=-2.0).view(-1, R, K)  # ‖m‖² − 2 x·m, for every run
        nearest, j = block.min(dim=2)
        labels[s : s + step] = j
        dist[s : s + step] = nearest + x_sq[s : s + step, None]
        if with_sums:
            if X.device.type == "cpu":  # the chunk is still in cache: add it into each run's cluster sums
                for r in range(R):
                    sums[r].index_add_(0, j[:, r], xb)
            else:  # on a GPU a one-hot matrix product is fast and, unlike index_add_, deterministic
                onehot = torch.zeros(xb.shape[0], R * K, dtype=X.dtype, device=X.device)
                onehot.scatter_(1, j + offsets, 1.0)
                sums.view(R * K, d).addmm_(onehot.T, xb)
    dist.clamp_(min=0)
    if not with_sums:
        return labels, dist
    counts = torch.bincount((labels + offsets).flatten(), minlength=R * K).view(R, K)
    return labels, dist, sums, counts


# ----------------------------------------------------------------------------------------------- initialisation
def random_init(X, n_clusters: int, seed=0) -> np.ndarray:
    """Forgy initialisation: ``n_clusters`` distinct data points drawn uniformly at random. Notebook 01 §3."""
    Xt = as_float_tensor(X)
    k = check_int(n_clusters, "n_clusters", 1, Xt.shape[0])
    idx = numpy_rng(seed).choice(Xt.shape[0], size=k, replace=False)
    return Xt[torch.from_numpy(idx)].cpu().numpy()


def kmeans_plusplus(X, n_clusters: int, seed=0, n_local_trials: int | None = None, device=None) -> np.ndarray:
    r"""k-means++ seeding (Arthur & Vassilvitskii, 2007), greedy variant.

    The first centroid is a data point drawn uniformly; each next one is drawn with probability proportional to
    :math:`D(x)^2`, the squared distance from :math:`x` to the nearest centroid chosen so far. The greedy variant
    draws ``n_local_trials`` candidates that way (default :math:`2 + \lfloor \ln K \rfloor`, as scikit-learn) and
    keeps the one that lowers :math:`\sum_i D(x_i)^2` most; ``n_local_trials=1`` is the original algorithm.
    Returns the ``(n_clusters, d)`` initial centroids.
    Notebook 01 §3.
    """
    device = resolve_device(device) if device is not None else None
    Xt = as_float_tensor(X, device=device)
    k = check_int(n_clusters, "n_clusters", 1, Xt.shape[0])
    return _kmeans_plusplus(Xt, _sq_norms(Xt), k, numpy_rng(seed), n_local_trials)[0].cpu().numpy()


def _kmeans_plusplus(X, x_sq, k, rng, n_local_trials=None, n_runs: int = 1) -> torch.Tensor:
    """Greedy k-means++ for ``n_runs`` independent runs at once; returns (n_runs, k, d) centroids.

    The runs share each pass over X: every step evaluates all runs' candidates with one matrix product.
    """
    n = X.shape[0]
    trials = 2 + int(math.log(k)) if n_local_trials is None else check_int(n_local_trials, "n_local_trials", 1)
    runs = torch.arange(n_runs, device=X.device)
    chosen = torch.empty(n_runs, k, dtype=torch.int64, device=X.device)
    first = torch.from_numpy(rng.integers(n, size=n_runs)).to(X.device)
    chosen[:, 0] = first
    closest = (x_sq[None, :] - 2 * X[first] @ X.T + x_sq[first, None]).clamp_(min=0)  # D(x)^2, one row per run
    for c in range(1, k):
        cumulative = np.cumsum(closest.double().cpu().numpy(), axis=1)
        total = cumulative[:, -1:]
        draws = rng.uniform(size=(n_runs, trials)) * total
        cand = np.stack([np.searchsorted(cumulative[r], draws[r], side="right") for r in range(n_runs)])
        cand = np.minimum(cand, n - 1)
        flat_zero = total[:, 0] <= 0  # fewer distinct points than k: any point will do
        if flat_zero.any():
            cand[flat_zero] = rng.integers(n, size=(int(flat_zero.sum()), trials))
        cand = torch.from_numpy(cand).to(X.device)  # (n_runs, trials)
        flat = cand.flatten()
        d_cand = (x_sq[None, :] - 2 * X[flat] @ X.T + x_sq[flat, None]).clamp_(min=0).view(n_runs, trials, n)
        d_cand = torch.minimum(d_cand, closest[:, None, :])
        best = torch.argmin(d_cand.double().sum(dim=2), dim=1)  # the candidate that lowers the potential most
        closest = d_cand[runs, best]
        chosen[:, c] = cand[runs, best]
    return X[chosen]


# ----------------------------------------------------------------------------------------- Lloyd, plainly
def lloyd(X, centers, max_iter: int = 300, tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd's algorithm as the lecture writes it, in plain NumPy, from the initial ``centers`` (K × d).

    This is the version to read; :class:`KMeans` runs the same steps, batched and chunked (and a test checks that
    both give the same centroids, labels and iteration count). Returns ``(centers, labels, n_iter)``. Notebook 01 §1.
    """
    X = as_float_array(X)
    m = as_float_array(centers, "centers", n_features=X.shape[1]).copy()
    eps = tol * X.var(axis=0).mean()  # tol relative to the data's mean per-feature variance
    labels = None
    for t in range(1, max_iter + 1):
        d2 = ((X[:, None, :] - m[None, :, :]) ** 2).sum(axis=2)  # ‖x_i − m_j‖², n × K
        new_labels = d2.argmin(axis=1)  # assignment step: C(x_i) = argmin_j ‖x_i − m_j‖²
        sizes = np.bincount(new_labels, minlength=len(m))
        m_new = np.array([X[new_labels == j].mean(axis=0) if sizes[j] else m[j] for j in range(len(m))])  # update
        empty = np.flatnonzero(sizes == 0)  # an empty cluster restarts at the point farthest from its centroid
        m_new[empty] = X[np.argsort(-d2.min(axis=1), kind="stable")[: len(empty)]]
        shift = ((m_new - m) ** 2).sum(axis=1).mean()  # (1/K) Σ_j ‖m_j(t+1) − m_j(t)‖²
        unchanged = labels is not None and np.array_equal(new_labels, labels) and not len(empty)
        m, labels = m_new, new_labels
        if unchanged or shift <= eps:  # the two stopping rules (the cap is the loop's end)
            break
    labels = ((X[:, None, :] - m[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)  # consistent with the final m
    return m, labels, t


# ---------------------------------------------------------------------------------------------------- KMeans
class KMeans(ParamsMixin):
    """k-means clustering by Lloyd's algorithm, scikit-learn style.

    Parameters
    ----------
    n_clusters : K, the number of clusters (1 ≤ K ≤ n).
    init : ``"k-means++"`` (greedy k-means++, :func:`kmeans_plusplus`), ``"random"`` (K distinct data points) or a
        (K, d) array of initial centroids (then ``n_init`` is 1).
    n_init : independent runs from different initialisations; the one with the lowest WSS is kept.
    max_iter : the iteration cap (first stopping rule).
    tol : relative tolerance of the second stopping rule, mean squared centroid shift ≤ ε with
        ε = tol × (mean per-feature variance of X). scikit-learn's ``tol=t`` equals ours with ``tol=t/K``.
    seed : integer seed (default 0) or ``numpy.random.Generator``; the same seed gives the same result on the same
        device, ``None`` fresh randomness.
    device : ``None``/``"auto"`` (CUDA, then MPS, then CPU), or ``"cpu"``, ``"cuda"``, ``"mps"``.
    keep_history : record the centroids and the WSS of every iteration of the best run in ``history_``.

    Fitted attributes: ``cluster_centers_`` (K, d), ``labels_`` (n,), ``inertia_`` (the WSS of the final
    centroids), ``n_iter_``, and ``history_`` = ``{"centers": [...], "wss": [...], "shift": [...]}``, where entry t
    holds the centroids used in assignment step t+1, the WSS of that assignment, and the mean squared shift of the
    update that followed.
    Notebook 01 §1 and §4.
    """

    def __init__(self, n_clusters: int = 8, init="k-means++", n_init: int = 10, max_iter: int = 300,
                 tol: float = 1e-4, seed=0, device=None, keep_history: bool = True):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.device = device
        self.keep_history = keep_history

    # -------------------------------------------------------------------------------------------- checks
    def _validate(self, X: torch.Tensor) -> tuple[int, int]:
        k = check_int(self.n_clusters, "n_clusters", 1)
        if k > X.shape[0]:
            raise ValueError(f"n_clusters: expected at most n_samples = {X.shape[0]}, got {k}")
        n_init = check_int(self.n_init, "n_init", 1)
        check_int(self.max_iter, "max_iter", 1)
        check_number(self.tol, "tol", 0.0)
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(f"init: expected 'k-means++', 'random' or an array of centroids, got {self.init!r}")
        else:
            init = as_float_tensor(self.init, "init")
            if tuple(init.shape) != (k, X.shape[1]):
                raise ValueError(f"init: expected an array of shape ({k}, {X.shape[1]}), got {tuple(init.shape)}")
            n_init = 1
        return k, n_init

    # ---------------------------------------------------------------------------------------------- fit
    def fit(self, X, y=None) -> "KMeans":
        """Run Lloyd's algorithm ``n_init`` times and keep the run with the lowest WSS. ``y`` is ignored."""
        device = resolve_device(self.device)
        Xt = as_float_tensor(X, device=device)
        k, n_init = self._validate(Xt)
        rng = numpy_rng(self.seed)
        x_sq = _sq_norms(Xt)
        eps = float(self.tol) * float(Xt.double().var(dim=0).mean())
        if not isinstance(self.init, str):
            inits = as_float_tensor(self.init, "init", device).to(Xt.dtype)[None]
        elif self.init == "k-means++":
            inits = _kmeans_plusplus(Xt, x_sq, k, rng, n_runs=n_init)
        else:
            picks = np.stack([rng.choice(Xt.shape[0], size=k, replace=False) for _ in range(n_init)])
            inits = Xt[torch.from_numpy(picks).to(device)]
        centers, n_iters, histories = self._lloyd(Xt, x_sq, inits, eps)
        labels, dist = _lloyd_pass(Xt, x_sq, centers, with_sums=False)  # labels consistent with final centroids
        inertias = dist.double().sum(dim=0)
        best = int(torch.argmin(inertias))  # the first of equal minima, as a sequential loop would keep
        self.cluster_centers_ = centers[best].cpu().numpy()
        self.labels_ = labels[:, best].cpu().numpy()
        self.inertia_ = float(inertias[best])
        self.n_iter_ = n_iters[best]
        self.history_ = histories[best]
        self.n_features_in_ = Xt.shape[1]
        return self

    def _lloyd(self, X, x_sq, centers, eps):
        """Lloyd's algorithm for R runs in lockstep (centers: R×K×d); a run leaves the batch when it stops.

        Each run follows the trajectory it would follow alone (exactly in float64; in float32 the rounding of the
        distance block depends on its width R·K, so a point tied to within ~1e-7 between two centroids can be
        assigned differently); batching only shares the passes over X.
        """
        R = centers.shape[0]
        final = centers.clone()
        n_iters = [0] * R
        histories = [{"centers": [], "wss": [], "shift": []} for _ in range(R)]
        active = list(range(R))
        previous = None
        for it in range(1, self.max_iter + 1):
            labels, dist, sums, counts = _lloyd_pass(X, x_sq, centers)
            new = sums / counts.clamp(min=1).unsqueeze(-1).to(X.dtype)  # update step: m_j = mean of S_j
            for a in range(len(active)):
                empty = torch.nonzero(counts[a] == 0).flatten()
                if len(empty):  # re-seed each empty cluster at the point farthest from its centroid (deterministic)
                    far = torch.argsort(dist[:, a], descending=True, stable=True)[: len(empty)]
                    new[a, empty] = X[far]
            shift = ((new - centers) ** 2).sum(dim=2).mean(dim=1).tolist()  # (1/K) Σ_j ‖m_j(t+1) − m_j(t)‖²
            unchanged = (labels == previous).all(dim=0).tolist() if previous is not None else [False] * len(active)
            stays = []
            for a, run in enumerate(active):
                if self.keep_history:
                    histories[run]["centers"].append(centers[a].cpu().numpy())
                    histories[run]["wss"].append(float(dist[:, a].double().sum()))
                    histories[run]["shift"].append(shift[a])
                no_empty = bool((counts[a] > 0).all())
                if (unchanged[a] and no_empty) or shift[a] <= eps or it == self.max_iter:
                    final[run], n_iters[run] = new[a], it
                else:
                    stays.append(a)
            if not stays:
                break
            active = [active[a] for a in stays]
            keep = torch.tensor(stays, device=X.device)
            centers, previous = new[keep], labels[:, keep]
        return final, n_iters, histories

    # ----------------------------------------------------------------------------------------- predict
    def _check_fitted(self, X) -> torch.Tensor:
        check_fitted(self, "cluster_centers_")
        Xt = as_float_tensor(X, device=resolve_device(self.device))
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features (as in fit), got {Xt.shape[1]}")
        return Xt

    def predict(self, X) -> np.ndarray:
        """The index of the nearest fitted centroid for every row of ``X``."""
        Xt = self._check_fitted(X)
        centers = torch.from_numpy(self.cluster_centers_).to(Xt.device, Xt.dtype)
        return _lloyd_pass(Xt, _sq_norms(Xt), centers[None], with_sums=False)[0][:, 0].cpu().numpy()

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X)`` and return ``labels_``."""
        return self.fit(X).labels_

    def transform(self, X) -> np.ndarray:
        """Euclidean distances from every row of ``X`` to every centroid, shape (n, K)."""
        Xt = self._check_fitted(X)
        centers = torch.from_numpy(self.cluster_centers_).to(Xt.device, Xt.dtype)
        return torch.cdist(Xt, centers).cpu().numpy()

    def score(self, X, y=None) -> float:
        """Minus the WSS of ``X`` with respect to the fitted centroids (higher is better, as in scikit-learn)."""
        return -float(within_sum_of_squares(X, self.predict(X), self.cluster_centers_))

    def __repr__(self) -> str:
        init = self.init if isinstance(self.init, str) else "array"
        return (f"KMeans(n_clusters={self.n_clusters}, init={init!r}, n_init={self.n_init}, tol={self.tol}, "
                f"seed={self.seed})")


# --------------------------------------------------------------------------------------------- sums of squares
def _np64(X, name="X") -> np.ndarray:
    return as_float_array(X, name)


def _labels_for(X: np.ndarray, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (X.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected {X.shape[0]} integer labels (one per row of X), got {labels.shape}")
    return labels


def total_sum_of_squares(X) -> float:
    r"""TSS :math:`= \sum_i \lVert x_i - \bar x \rVert^2`, the spread of the data around its mean (float64).
    Notebook 01 §2."""
    X = _np64(X)
    return float(((X - X.mean(axis=0)) ** 2).sum())


def within_sum_of_squares(X, labels, centers=None) -> float:
    r"""WSS :math:`= \sum_j \sum_{i \in S_j} \lVert x_i - m_j \rVert^2` (float64).

    ``centers`` defaults to the cluster means, for which TSS = BSS + WSS holds exactly.
    Notebook 01 §2.
    """
    X = _np64(X)
    labels = _labels_for(X, labels)
    if centers is None:
        _, inverse = np.unique(labels, return_inverse=True)
        means = np.zeros((inverse.max() + 1, X.shape[1]))
        np.add.at(means, inverse, X)
        means /= np.bincount(inverse)[:, None]
        return float(((X - means[inverse]) ** 2).sum())
    centers = _np64(centers, "centers")
    if labels.min() < 0 or labels.max() >= len(centers) or centers.shape[1] != X.shape[1]:
        raise ValueError(f"centers: expected shape (> {labels.max()}, {X.shape[1]}), got {centers.shape}")
    return float(((X - centers[labels]) ** 2).sum())


def between_sum_of_squares(X, labels) -> float:
    r"""BSS :math:`= \sum_j |S_j| \, \lVert m_j - \bar x \rVert^2`, with :math:`m_j` the mean of cluster :math:`S_j`.
    Notebook 01 §2."""
    X = _np64(X)
    labels = _labels_for(X, labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((len(counts), X.shape[1]))
    np.add.at(means, inverse, X)
    means /= counts[:, None]
    return float((counts * ((means - X.mean(axis=0)) ** 2).sum(axis=1)).sum())


# ------------------------------------------------------------------------------------------------------- elbow
def elbow(X, ks: Iterable[int], n_init: int = 3, seed=0, device=None, max_iter: int = 300, tol: float = 1e-4,
          progress: bool = False) -> np.ndarray:
    """The best WSS of :class:`KMeans` for every K in ``ks`` (same seed for each K). Notebook 01 §5."""
    ks = list(ks)
    if not ks:
        raise ValueError("ks: expected at least one number of clusters")
    Xt = as_float_tensor(X, device=resolve_device(device))
    if progress:
        from tqdm.auto import tqdm

        ks_iter = tqdm(ks, desc="elbow")
    else:
        ks_iter = ks
    return np.array([
        KMeans(k, n_init=n_init, seed=seed, device=device, max_iter=max_iter, tol=tol, keep_history=False)
        .fit(Xt).inertia_
        for k in ks_iter
    ])


def find_knee(ks: Sequence[int], wss: Sequence[float], log: bool = True) -> int:
    """The K at the elbow of a decreasing WSS curve (the Kneedle idea of Satopää et al., 2011).

    Both axes are scaled to [0, 1]; the knee is the point farthest below the straight line joining the first and
    last points of the curve. With ``log=True`` (default) the curve is log(WSS): what counts is the *relative*
    decrease an extra cluster buys, so the large first drops do not hide the elbow.
    Notebook 01 §5.
    """
    ks, wss = np.asarray(ks, dtype=float), np.asarray(wss, dtype=float)
    if ks.shape != wss.shape or ks.ndim != 1 or len(ks) < 3:
        raise ValueError(f"ks and wss: expected two 1-D sequences of the same length >= 3, got {ks.shape}, {wss.shape}")
    if np.any(np.diff(ks) <= 0):
        raise ValueError("ks: expected strictly increasing values")
    if not np.all(np.isfinite(wss)) or (log and np.any(wss <= 0)):
        raise ValueError("wss: expected finite values" + (" > 0 (log=True)" if log else ""))
    curve = np.log(wss) if log else wss
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = curve[0] - curve[-1]
    yv = (curve - curve[-1]) / span if span > 0 else np.zeros_like(curve)
    gap = (1 - x) - yv  # the chord from (0, 1) to (1, 0) minus the curve
    return int(ks[int(np.argmax(gap))])


def relative_contrast(X, n_queries: int = 100, seed=0) -> float:
    r"""Mean over query points of :math:`(D_{\max} - D_{\min}) / D_{\min}`, the spread of Euclidean distances.

    In high dimensions this ratio shrinks towards 0 for unstructured data: the nearest and the farthest point are
    almost equally far, the "concentration of distances" that makes raw-pixel clustering hard.
    Notebook 01 §7.
    """
    X = _np64(X)
    n_queries = check_int(n_queries, "n_queries", 1, X.shape[0] - 1)
    rng = numpy_rng(seed)
    q = rng.choice(X.shape[0], size=n_queries, replace=False)
    sq = (X**2).sum(axis=1)
    d = np.sqrt(np.maximum(sq[q, None] - 2 * X[q] @ X.T + sq[None, :], 0))
    d[np.arange(n_queries), q] = np.nan  # a point's distance to itself does not count
    dmin, dmax = np.nanmin(d, axis=1), np.nanmax(d, axis=1)
    return float(np.mean((dmax - dmin) / dmin))
