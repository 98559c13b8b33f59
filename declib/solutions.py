"""Reference solutions of the notebooks' exercises (try first: each notebook folds the same code under "Solution").

The tests run every one of them through its checker in :mod:`declib.exercises`, so a checker that rejects a right
answer fails CI.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


# 00 · MNIST tour
def class_means(X, y):
    """The mean image of every class c = 0..K−1 (row c)."""
    return np.stack([X[y == c].mean(axis=0) for c in range(y.max() + 1)])


def nearest_mean(X, means):
    """For every row of X the index of the closest mean."""
    d2 = ((X[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


# 01 · k-means
def assign(X, centers):
    """C(x_i) = argmin_j ‖x_i − m_j‖²."""
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def update(X, labels, K):
    """m_j = the mean of the points with label j."""
    return np.stack([X[labels == j].mean(axis=0) for j in range(K)])


def kmeanspp_probabilities(X, chosen):
    """D(x_i)² / Σ D(x)², D = distance to the nearest centroid chosen so far."""
    D2 = ((X[:, None, :] - chosen[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    return D2 / D2.sum()


# 02 · backprop
def forward(X, W1, W2):
    Z = X @ W1
    H = np.tanh(Z)
    return Z, H, H @ W2


def backward(X, Y, W1, W2):
    Z, H, Y_hat = forward(X, W1, W2)
    delta2 = 2 * (Y_hat - Y) / Y.size  # ∂L/∂Ŷ for L = mean (Ŷ − Y)²
    dW2 = H.T @ delta2
    delta1 = (delta2 @ W2.T) * (1 - np.tanh(Z) ** 2)  # δ1 = (δ2 W2ᵀ) ⊙ f'(Z)
    return X.T @ delta1, dW2


# 03 · autoencoders
def masking_noise(X, fraction, rng):
    return X * (rng.uniform(size=X.shape) >= fraction)


def train_step(model, optimizer, xb):
    optimizer.zero_grad()
    loss = F.mse_loss(model(xb), xb)
    loss.backward()
    optimizer.step()
    return loss.item()


# 04 · stacked autoencoders
def layer_input(model, X, l):
    enc, _ = model.linears()
    h = torch.as_tensor(X)
    with torch.no_grad():
        for k in range(l):
            h = enc[k](h)
            if k < len(enc) - 1:  # the embedding (last layer) is linear
                h = torch.relu(h)
    return h


def greedy_layer_step(enc, dec, optimizer, h, keep, p):
    x_tilde = h * keep / (1 - p)  # inverted dropout as corruption
    loss = F.mse_loss(dec(torch.relu(enc(x_tilde))), h)  # reconstruct the clean input
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# 05 · DEC
def target_distribution(q):
    w = q**2 / q.sum(axis=0)  # q_ij² / f_j
    return w / w.sum(axis=1, keepdims=True)


def dec_gradients(z, mu, p):
    diff = z[:, None, :] - mu[None, :, :]  # z_i − μ_j
    d = 1.0 / (1.0 + (diff**2).sum(axis=2))  # d_ij
    q = d / d.sum(axis=1, keepdims=True)
    w = 2 * d * (p - q)  # (α + 1)/α · d_ij (p_ij − q_ij), α = 1
    return (w[:, :, None] * diff).sum(axis=1), -(w[:, :, None] * diff).sum(axis=0)


# 06 · beyond DEC
def shift_images(images, shifts):
    n = len(images)
    grid = images.reshape(n, 28, 28)
    out = np.zeros_like(grid)
    for i, (dx, dy) in enumerate(shifts):
        # new pixel (r, c) = old pixel (r - dy, c - dx); the rows/columns that come from outside stay 0
        out[i, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
            grid[i, max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
    return out.reshape(n, 784)


def silhouette(Z, labels):
    D = np.sqrt(((Z[:, None, :] - Z[None, :, :]) ** 2).sum(axis=2))  # pairwise distances
    s = np.zeros(len(Z))
    for i in range(len(Z)):
        own = labels == labels[i]
        if own.sum() == 1:
            continue  # a point alone in its cluster: s_i = 0
        a = D[i, own].sum() / (own.sum() - 1)  # the point itself adds 0 to the sum
        b = min(D[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
        s[i] = (b - a) / max(a, b)
    return s.mean()
