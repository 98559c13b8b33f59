import itertools

import numpy as np
import pytest

from declib.metrics import (ari, cluster_accuracy, cluster_mapping, contingency, mapped_confusion_matrix, nmi,
                            scores)


def brute_force_accuracy(y_true, y_pred):
    """Try every one-to-one map of clusters to classes (unmatched clusters count as wrong)."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    if len(clusters) <= len(classes):
        maps = (dict(zip(clusters, perm)) for perm in itertools.permutations(classes, len(clusters)))
    else:
        maps = (dict(zip(subset, classes)) for subset in itertools.permutations(clusters, len(classes)))
    for m in maps:
        best = max(best, sum(m.get(p, None) == t for t, p in zip(y_true, y_pred)))
    return best / len(y_true)


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_is_one_for_any_relabelling(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, 500)
    relabel = rng.permutation(10) + 100  # cluster names need not be 0..K-1
    acc, mapping = cluster_accuracy(y, relabel[y], return_mapping=True)
    assert acc == 1.0
    assert mapping == {int(relabel[c]): c for c in range(10)}


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_classes, n_clusters = rng.integers(2, 6), rng.integers(2, 6)
    y_true = rng.integers(0, n_classes, 40)
    y_pred = rng.integers(0, n_clusters, 40)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(brute_force_accuracy(y_true, y_pred))


def test_more_clusters_than_classes():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 2, 2, 1, 1, 1, 3])  # class 0 split in two clusters, one straggler
    acc, mapping = cluster_accuracy(y_true, y_pred, return_mapping=True)
    assert acc == pytest.approx(5 / 8)
    assert len(mapping) == 2 and mapping[1] == 1 and mapping[0] == 0 or mapping[2] == 0
    matrix, classes, order = mapped_confusion_matrix(y_true, y_pred)
    assert matrix.shape == (2, 4) and matrix.sum() == 8
    assert matrix[0, 0] == 2 and matrix[1, 1] == 3  # the diagonal holds the matched clusters


def test_confusion_matrix_is_diagonal_for_perfect_clustering():
    y = np.repeat(np.arange(4), 5)
    matrix, classes, order = mapped_confusion_matrix(y, (y + 1) % 4)
    assert np.array_equal(matrix, np.diag([5] * 4))
    assert order.tolist() == [1, 2, 3, 0]


def test_nmi_ari_and_scores():
    y = np.repeat(np.arange(3), 10)
    assert nmi(y, 2 - y) == pytest.approx(1.0) and ari(y, 2 - y) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert abs(ari(rng.integers(0, 3, 3000), rng.integers(0, 3, 3000))) < 0.01
    s = scores(y, y)
    assert s == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}


def test_contingency_counts():
    table, classes, clusters = contingency([0, 0, 1], [5, 6, 6])
    assert table.tolist() == [[1, 1], [0, 1]] and classes.tolist() == [0, 1] and clusters.tolist() == [5, 6]


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        ([0, 1], [0], "same length"),
        ([[0, 1]], [0, 1], "y_true: expected a 1-D"),
        ([], [], "y_true: expected at least one"),
        ([0.5, 1.0], [0, 1], "y_true: expected integer labels"),
        ([0, 1], [0, np.nan], "y_pred: expected integer labels"),
    ],
)
def test_bad_input(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        cluster_accuracy(y_true, y_pred)


def test_mapping_helper_agrees():
    y = np.array([0, 0, 1, 1, 2])
    assert cluster_mapping(y, np.array([1, 1, 0, 0, 0])) == {1: 0, 0: 1}
