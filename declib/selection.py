r"""Choosing without labels: how many clusters K, and which of several runs to keep.

Both are model selection with no ground truth, so every criterion here is computed from the data (or the embedding)
alone; the labels only score the choice afterwards.

**How many clusters.** For K = 5 … 15 on the embedding z:

* the **WSS elbow/knee** — k-means' within-cluster sum of squares :math:`\mathrm{WSS}(K)` always falls with K; the
  knee (:func:`declib.kmeans.find_knee`) is where an extra cluster stops buying much;
* the **silhouette** — for point i with mean distance :math:`a_i` to its own cluster and :math:`b_i` to the nearest
  other cluster, :math:`s_i = (b_i - a_i)/\max(a_i, b_i)`; the K with the largest mean :math:`\bar s` wins;
* **BIC** of a Gaussian mixture, :math:`\mathrm{BIC} = -2 \log \hat L + p \log n` with p free parameters; the smallest
  wins;
* DEC's own check (Xie et al. 2016, §5.5): train DEC on a training part, compute the loss
  :math:`L = \mathrm{KL}(P\Vert Q)/n` on it and on held-out digits, and form the **generalizability**
  :math:`G(K) = L_{\text{train}} / L_{\text{validation}}`. When K exceeds the number of natural groups, DEC splits one
  of them along a boundary that the held-out digits do not share: the validation loss rises and G drops. The paper
  picks the K just before the sharpest drop (9 on MNIST, where 4 and 9 look alike).

**Which run.** Restarts and seeds of the same method end in different partitions, and a few of them merge two digits.
The rule here is a *consensus*: among R partitions, keep the one that agrees most with the others,

.. math:: r^\star = \arg\max_r \frac{1}{R-1} \sum_{s \ne r} \mathrm{ARI}(C_r, C_s),

because the runs that merge two digits merge *different* pairs, or the same pair in different ways, while the good
runs agree with one another. It needs no labels, only that most runs are good. Notebook 06 §4–5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._util import as_float_array, check_int, check_seed, numpy_rng
from .kmeans import KMeans, find_knee
from .metrics import ari

__all__ = ["agreement_matrix", "consensus_pick", "kmeans_restarts", "k_sweep", "generalizability",
           "pick_generalizability", "pick_k"]


def _labelings(labelings) -> list[np.ndarray]:
    runs = [np.asarray(l) for l in labelings]
    if len(runs) < 2:
        raise ValueError(f"labelings: expected at least two partitions to compare, got {len(runs)}")
    n = len(runs[0])
    for i, r in enumerate(runs):
        if r.ndim != 1 or len(r) != n:
            raise ValueError(f"labelings: expected 1-D label arrays of the same length {n}, got shape {r.shape} "
                             f"at position {i}")
    return runs


def agreement_matrix(labelings: Sequence) -> np.ndarray:
    """A (R × R) matrix of pairwise adjusted Rand indices between R partitions of the same points (1 on the
    diagonal). Notebook 06 §4."""
    runs = _labelings(labelings)
    R = len(runs)
    A = np.eye(R)
    for i in range(R):
        for j in range(i + 1, R):
            A[i, j] = A[j, i] = ari(runs[i], runs[j])
    return A


def consensus_pick(labelings: Sequence) -> int:
    """The index r* of the partition with the largest mean ARI to all the others (see the module docstring).
    Notebook 06 §4."""
    A = agreement_matrix(labelings)
    return int(np.argmax((A.sum(axis=1) - 1) / (len(A) - 1)))


def kmeans_restarts(Z, n_clusters: int, n_restarts: int, seed: int = 0, device=None) -> list[KMeans]:
    """``n_restarts`` single k-means runs (k-means++ start, ``n_init=1``) with seeds seed, seed+1, …: the raw
    material that :class:`declib.kmeans.KMeans` (``n_init`` > 1) chooses from by the smallest WSS. Notebook 06 §4."""
    check_int(n_restarts, "n_restarts", 1)
    seed = check_seed(seed)
    Zt = torch.as_tensor(as_float_array(Z, "Z", np.float32))
    return [KMeans(n_clusters, n_init=1, seed=seed + r, device=device, keep_history=False).fit(Zt)
            for r in range(n_restarts)]


def k_sweep(Z, ks: Sequence[int] = tuple(range(5, 16)), *, n_init: int = 5, silhouette_sample: int = 10_000,
            bic: bool = True, seed=0, device=None, progress: bool = False) -> dict:
    """For every K in ``ks``: k-means' WSS (``n_init`` restarts), the mean silhouette of that partition on a random
    sample of ``silhouette_sample`` points (scikit-learn's ``silhouette_score``), and, when ``bic``, the BIC of a
    full-covariance Gaussian mixture. Returns ``{"ks", "wss", "silhouette", "bic"}`` (lists). Notebook 06 §5."""
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    Z = as_float_array(Z, "Z", np.float32)
    ks = [check_int(k, "ks", 2, len(Z) - 1) for k in ks]
    if len(ks) < 3 or any(b <= a for a, b in zip(ks, ks[1:])):
        raise ValueError(f"ks: expected at least 3 strictly increasing numbers of clusters, got {ks}")
    check_int(silhouette_sample, "silhouette_sample", 2)
    rng = numpy_rng(seed)
    sample = rng.choice(len(Z), size=min(silhouette_sample, len(Z)), replace=False)
    seed_int = int(rng.integers(2**31))
    out: dict[str, list] = {"ks": ks, "wss": [], "silhouette": [], "bic": []}
    Zt = torch.as_tensor(Z)
    iterator = ks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(ks, desc="K")
    for k in iterator:
        km = KMeans(k, n_init=n_init, seed=seed_int, device=device, keep_history=False).fit(Zt)
        out["wss"].append(float(km.inertia_))
        out["silhouette"].append(float(silhouette_score(Z[sample], km.labels_[sample])))
        if bic:
            gmm = GaussianMixture(k, covariance_type="full", random_state=seed_int).fit(Z)
            out["bic"].append(float(gmm.bic(Z)))
    return out


def generalizability(make_dec: Callable[[int], object], X_train, X_val, ks: Sequence[int]) -> dict:
    """DEC's generalizability G(K) = L_train / L_validation for every K in ``ks`` (Xie et al. 2016, §5.5).

    ``make_dec(K)`` returns an unfitted :class:`declib.dec.DEC` with K clusters (a fresh copy of the pretrained
    encoder each time). It is fitted on ``X_train``; L_train is KL(P‖Q)/n over the training digits at the end of
    training, L_validation the same on ``X_val`` with the trained encoder and centroids (P from the validation
    digits' own Q). Returns ``{"ks", "loss_train", "loss_val", "G"}``. Notebook 06 §5.
    """
    from .dec import kl_divergence, target_distribution

    out: dict[str, list] = {"ks": list(ks), "loss_train": [], "loss_val": [], "G": []}
    for k in ks:
        model = make_dec(k).fit(X_train)
        with torch.no_grad():
            q = model._q_all(torch.as_tensor(as_float_array(X_val, "X_val", np.float32)).to(model.centroids.device))
            loss_val = float(kl_divergence(target_distribution(q), q, "mean"))
        loss_train = float(model.history_["loss"][-1])
        out["loss_train"].append(loss_train)
        out["loss_val"].append(loss_val)
        out["G"].append(loss_train / loss_val)
    return out


def pick_generalizability(ks: Sequence[int], G: Sequence[float]) -> int:
    """The K just before the sharpest drop of G: K_i with the largest G(K_i) − G(K_{i+1}). Notebook 06 §5."""
    ks, G = list(ks), np.asarray(G, dtype=float)
    if len(ks) != len(G) or len(ks) < 2:
        raise ValueError(f"ks and G: expected two sequences of the same length >= 2, got {len(ks)} and {len(G)}")
    if not np.all(np.isfinite(G)):
        raise ValueError("G: expected finite values")
    return int(ks[int(np.argmax(G[:-1] - G[1:]))])


def pick_k(sweep: dict, gen: dict | None = None) -> dict[str, int]:
    """Which K each criterion picks: the knee of log WSS and of WSS, the largest silhouette, the smallest BIC and
    (given :func:`generalizability`'s result) the K before G's sharpest drop. Notebook 06 §5."""
    ks = sweep["ks"]
    picks = {"WSS knee (log)": find_knee(ks, sweep["wss"], log=True),
             "WSS knee": find_knee(ks, sweep["wss"], log=False),
             "silhouette": int(ks[int(np.argmax(sweep["silhouette"]))])}
    if sweep.get("bic"):
        picks["GMM BIC"] = int(ks[int(np.argmin(sweep["bic"]))])
    if gen is not None:
        picks["DEC generalizability"] = pick_generalizability(gen["ks"], gen["G"])
    return picks
