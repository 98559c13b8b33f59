r"""Clustering metrics: the labels are used here, and nowhere else in the pipeline.

A clustering names its groups arbitrarily (cluster 3 may hold the sevens), so a prediction is scored after the best
one-to-one matching of clusters to classes:

.. math::

    \mathrm{ACC} = \max_{m} \frac{1}{n} \sum_{i=1}^{n} \mathbb{1}\{y_i = m(c_i)\}

where :math:`m` ranges over one-to-one maps from clusters to classes. The best :math:`m` is a linear assignment
problem on the contingency table, solved exactly by the Hungarian method
(``scipy.optimize.linear_sum_assignment``). With more clusters than classes, the unmatched clusters count as wrong;
NMI and ARI (from scikit-learn) need no matching at all.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = ["contingency", "cluster_mapping", "cluster_accuracy", "nmi", "ari", "mapped_confusion_matrix", "scores",
           "merged_digits"]


def _labels(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of integer labels, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one label, got an empty array")
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{name}: expected integer labels, got dtype {a.dtype}")
    return a


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred: expected the same length, got {len(y_true)} and {len(y_pred)}")
    return y_true, y_pred


def contingency(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table ``N[c, k]`` = number of points of class ``classes[c]`` put in cluster ``clusters[k]``.

    Returns ``(N, classes, clusters)``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((len(classes), len(clusters)), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table, classes, clusters


def cluster_mapping(y_true, y_pred) -> dict[int, int]:
    """The one-to-one map cluster → class that maximises the number of matches (Hungarian method).

    Clusters left without a class (more clusters than classes) are absent from the dict.
    """
    return cluster_accuracy(y_true, y_pred, return_mapping=True)[1]


def cluster_accuracy(y_true, y_pred, return_mapping: bool = False):
    """Unsupervised clustering accuracy: the fraction of points whose cluster maps to their class.

    The map is the best one-to-one assignment of clusters to classes (see :func:`cluster_mapping`); it works for
    any numbers of clusters and classes. With ``return_mapping=True`` returns ``(accuracy, mapping)``.
    Notebook 00 §6 and 01 §6.
    """
    table, classes, clusters = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    acc = float(table[rows, cols].sum() / table.sum())
    mapping = {int(clusters[k]): int(classes[c]) for c, k in zip(rows, cols)}
    return (acc, mapping) if return_mapping else acc


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information I(Y; C) / mean(H(Y), H(C)) (scikit-learn's arithmetic normalisation).
    Notebook 00 §6."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index: pair-counting agreement, 0 for a random labelling and 1 for a perfect one.
    Notebook 00 §6."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(adjusted_rand_score(y_true, y_pred))


def scores(y_true, y_pred) -> dict[str, float]:
    """``{"acc": ..., "nmi": ..., "ari": ...}`` in one call."""
    return {"acc": cluster_accuracy(y_true, y_pred), "nmi": nmi(y_true, y_pred), "ari": ari(y_true, y_pred)}


def mapped_confusion_matrix(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contingency table with its columns ordered by the best mapping.

    Column ``c`` holds the cluster matched to class ``classes[c]``, so a perfect clustering is diagonal; unmatched
    clusters follow on the right. With fewer clusters than classes, a class left without a cluster gets an empty
    column of zeros whose cluster label is -1, so column ``c`` still belongs to class ``c``. Returns
    ``(matrix, classes, cluster_order)`` with ``matrix[c, j]`` the number of points of class ``classes[c]`` in
    cluster ``cluster_order[j]`` (0 for the label -1).
    Notebook 01 §6.
    """
    table, classes, clusters = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = dict(zip(rows, cols))
    columns = [table[:, matched[c]] if c in matched else np.zeros(len(classes), dtype=table.dtype)
               for c in range(len(classes))]
    labels = [clusters[matched[c]] if c in matched else -1 for c in range(len(classes))]
    rest = [k for k in range(len(clusters)) if k not in set(matched.values())]
    columns += [table[:, k] for k in rest]
    labels += [clusters[k] for k in rest]
    return np.stack(columns, axis=1), classes, np.array(labels)


def merged_digits(y_true, y_pred, share: float = 0.5) -> list[tuple[int, list[int]]]:
    """The clusters that hold two digits (classes) or more: each ``(cluster, [classes])`` where the cluster holds at
    least ``share`` of every listed class's points.

    With ``share = 0.5`` a class can be "held" by one cluster at most, so this reads straight off the contingency
    table: a cluster holding most of the 4s *and* most of the 9s has merged them, whatever its accuracy. An empty
    list means no cluster merged two digits.
    Notebook 05 §9.
    """
    if not 0.5 <= share <= 1:
        raise ValueError(f"share: expected a fraction in [0.5, 1], got {share!r}")
    table, classes, clusters = contingency(y_true, y_pred)
    held = table >= share * table.sum(axis=1, keepdims=True)  # held[c, k]: cluster k holds most of class c
    return [(int(clusters[k]), [int(c) for c in classes[held[:, k]]]) for k in range(len(clusters))
            if held[:, k].sum() >= 2]
