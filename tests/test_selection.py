"""Choosing without labels: the number of clusters K, and which of several runs to keep."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from torch import nn

from declib.dec import DEC
from declib.metrics import cluster_accuracy
from declib.selection import (agreement_matrix, consensus_pick, generalizability, k_sweep, kmeans_restarts,
                              pick_generalizability, pick_k)


def test_agreement_matrix_is_pairwise_ari():
    rng = np.random.default_rng(0)
    runs = [rng.integers(0, 4, 300) for _ in range(4)]
    A = agreement_matrix(runs)
    assert A.shape == (4, 4) and np.allclose(np.diag(A), 1) and np.allclose(A, A.T)
    assert A[1, 3] == pytest.approx(adjusted_rand_score(runs[1], runs[3]))


def test_consensus_keeps_a_good_run_and_skips_the_merged_ones():
    truth = np.repeat(np.arange(5), 100)
    relabel = lambda l, perm: np.asarray(perm)[l]  # noqa: E731 - the same partition under other cluster names
    good = [relabel(truth, p) for p in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 3, 2, 4])]
    rng = np.random.default_rng(1)
    for g in good[1:]:  # good runs differ in a few points
        flip = rng.choice(len(g), 10, replace=False)
        g[flip] = rng.integers(0, 5, 10)
    merged_a = truth.copy()
    merged_a[merged_a == 1] = 0  # 0 and 1 merged, 4 split in two
    merged_a[400:450] = 1
    merged_b = truth.copy()
    merged_b[merged_b == 3] = 2
    merged_b[:50] = 3
    runs = [merged_a, good[1], merged_b, good[2], good[0]]
    pick = consensus_pick(runs)
    assert pick in (1, 3, 4)
    assert pick == 4  # the error-free run agrees most with the others


def test_kmeans_restarts_are_single_runs_with_consecutive_seeds():
    X, _ = make_blobs(400, centers=4, random_state=0)
    runs = kmeans_restarts(X, 4, 3, seed=5)
    assert [r.n_init for r in runs] == [1, 1, 1] and [r.seed for r in runs] == [5, 6, 7]


def test_k_sweep_finds_the_true_number_of_separated_blobs():
    X, y = make_blobs(3000, centers=8, n_features=6, cluster_std=0.6, center_box=(-20, 20), random_state=2)
    sweep = k_sweep(X, range(4, 13), n_init=5, silhouette_sample=1000, seed=0)
    assert len(sweep["wss"]) == len(sweep["silhouette"]) == len(sweep["bic"]) == 9
    assert all(a > b for a, b in zip(sweep["wss"], sweep["wss"][1:]))  # WSS falls with K
    picks = pick_k(sweep)
    assert picks["silhouette"] == 8 and picks["GMM BIC"] == 8 and picks["WSS knee (log)"] == 8
    with pytest.raises(ValueError, match="ks: expected at least 3"):
        k_sweep(X, [3, 2, 4])
    with pytest.raises(ValueError, match="ks: expected an integer in"):
        k_sweep(X[:10], [2, 5, 20])


def test_pick_generalizability_takes_the_k_before_the_sharpest_drop():
    assert pick_generalizability([7, 8, 9, 10, 11], [0.9, 0.92, 0.95, 0.7, 0.68]) == 9
    with pytest.raises(ValueError, match="same length"):
        pick_generalizability([1, 2], [0.5])
    with pytest.raises(ValueError, match="finite"):
        pick_generalizability([1, 2, 3], [0.5, np.nan, 0.2])


def test_generalizability_is_train_over_validation_loss():
    X, y = make_blobs(1200, centers=4, n_features=5, cluster_std=1.0, random_state=0)
    X = X.astype(np.float32)

    def make_dec(k):
        enc = nn.Linear(5, 5)
        with torch.no_grad():
            enc.weight.copy_(torch.eye(5))
            enc.bias.zero_()
        return DEC(enc, k, update_interval=20, max_iter=200, batch_size=64, lr=0.01, seed=0, progress=False)

    gen = generalizability(make_dec, X[:800], X[800:], [3, 4, 5])
    assert gen["ks"] == [3, 4, 5]
    for lt, lv, g in zip(gen["loss_train"], gen["loss_val"], gen["G"]):
        assert lt > 0 and lv > 0 and g == pytest.approx(lt / lv)
    # the validation loss is DEC's KL on the held-out points: recompute it for K = 4
    from declib.dec import kl_divergence, soft_assignment, target_distribution

    model = make_dec(4).fit(X[:800])
    q = soft_assignment(torch.from_numpy(X[800:]) @ model.encoder.weight.T.detach() + model.encoder.bias.detach(),
                        model.centroids.detach())
    assert gen["loss_val"][1] == pytest.approx(float(kl_divergence(target_distribution(q), q, "mean")), rel=1e-4)
    assert cluster_accuracy(y[:800], model.labels_) > 0.95
