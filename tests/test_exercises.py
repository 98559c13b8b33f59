"""Every exercise checker accepts the reference solution, rejects planted mistakes with the specific hint, and
treats an untouched stub as "not attempted" (so the notebooks run with their stubs)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from declib import exercises as ex
from declib import solutions as sol

PAIRS = [(getattr(ex, f"check_{name}"), getattr(sol, name)) for name in
         ["class_means", "nearest_mean", "assign", "update", "kmeanspp_probabilities", "forward", "backward",
          "masking_noise", "train_step", "layer_input", "greedy_layer_step", "target_distribution",
          "dec_gradients", "shift_images", "silhouette"]]


@pytest.mark.parametrize("check, solution", PAIRS, ids=[s.__name__ for _, s in PAIRS])
def test_reference_solution_passes(check, solution, capsys):
    assert check(solution) is True
    assert capsys.readouterr().out.startswith("✓ ")


@pytest.mark.parametrize("check, solution", PAIRS, ids=[s.__name__ for _, s in PAIRS])
def test_stub_is_not_attempted(check, solution, capsys):
    def stub(*args):
        raise NotImplementedError

    assert check(stub) is None
    assert "not attempted yet" in capsys.readouterr().out


def fails(check, fn, hint):
    with pytest.raises(ex.ExerciseError, match=hint):
        check(fn)


def test_class_means_and_nearest_mean_hints():
    fails(ex.check_class_means, lambda X, y: np.stack([X[y == c].sum(0) for c in range(y.max() + 1)]),
          "sums of each class")
    fails(ex.check_class_means, lambda X, y: sol.class_means(X, y).T, "transposed")
    fails(ex.check_nearest_mean, lambda X, m: ((X[:, None] - m[None]) ** 2).sum(-1).argmax(1), "farthest")


def test_kmeans_hints():
    fails(ex.check_assign, lambda X, c: ((X[:, None] - c[None]) ** 2).sum(-1).argmin(1) + 1, "start at 0")
    fails(ex.check_assign, lambda X, c: np.zeros((len(X), 1)), "right number of entries in the wrong shape")
    fails(ex.check_update, lambda X, lab, K: np.stack([X[lab == j].sum(0) for j in range(K)]), "divide by")
    fails(ex.check_kmeanspp_probabilities,
          lambda X, C: np.sqrt(((X[:, None] - C[None]) ** 2).sum(-1).min(1)) /
          np.sqrt(((X[:, None] - C[None]) ** 2).sum(-1).min(1)).sum(), "square the distance")
    fails(ex.check_kmeanspp_probabilities, lambda X, C: ((X - C[0]) ** 2).sum(1) / ((X - C[0]) ** 2).sum(1).sum(),
          "nearest")
    fails(ex.check_kmeanspp_probabilities, lambda X, C: ((X[:, None] - C[None]) ** 2).sum(-1).min(1), "sum to")


def test_backprop_hints():
    def sigmoid_hidden(X, W1, W2):
        Z = X @ W1
        H = 1 / (1 + np.exp(-Z))
        return Z, H, H @ W2

    fails(ex.check_forward, sigmoid_hidden, "uses the sigmoid")
    fails(ex.check_forward, lambda X, W1, W2: (X @ W1, X @ W1, X @ W1 @ W2), "missing the activation")

    def no_fprime(X, Y, W1, W2):
        Z, H, Y_hat = sol.forward(X, W1, W2)
        delta2 = 2 * (Y_hat - Y) / Y.size
        return X.T @ (delta2 @ W2.T), H.T @ delta2

    def half(X, Y, W1, W2):  # ½ instead of the 2 of d(e²)/de: every gradient off by a factor ½
        dW1, dW2 = sol.backward(X, Y, W1, W2)
        return dW1 / 4, dW2 / 4

    fails(ex.check_backward, no_fprime, "missing f'")
    fails(ex.check_backward, half, "constant factor 0.25")
    fails(ex.check_backward, lambda X, Y, W1, W2: tuple(g.T for g in sol.backward(X, Y, W1, W2)), "shape")


def test_autoencoder_hints():
    fails(ex.check_masking_noise, lambda X, f, rng: X * (rng.uniform(size=X.shape) >= f) / (1 - f), "dropout")
    fails(ex.check_masking_noise, lambda X, f, rng: X * (np.random.uniform(size=X.shape) >= f), "rng")

    def in_place(X, f, rng):
        X[rng.uniform(size=X.shape) < f] = 0
        return X

    fails(ex.check_masking_noise, in_place, "X itself was changed")

    def no_zero_grad(model, opt, xb):
        loss = F.mse_loss(model(xb), xb)
        loss.backward()
        opt.step()
        return loss.item()

    def summed(model, opt, xb):
        opt.zero_grad()
        loss = ((model(xb) - xb) ** 2).sum()
        loss.backward()
        opt.step()
        return loss.item()

    fails(ex.check_train_step, no_zero_grad, "zero_grad")
    fails(ex.check_train_step, summed, "sum instead of the mean")
    fails(ex.check_train_step, lambda model, opt, xb: F.mse_loss(model(xb), xb).item(), "did not change")


def test_stacked_hints():
    def no_relu(model, X, l):
        enc, _ = model.linears()
        h = torch.as_tensor(X)
        with torch.no_grad():
            for k in range(l):
                h = enc[k](h)
        return h

    def relu_everywhere(model, X, l):
        enc, _ = model.linears()
        h = torch.as_tensor(X)
        with torch.no_grad():
            for k in range(l):
                h = torch.relu(enc[k](h))
        return h

    fails(ex.check_layer_input, no_relu, "ReLU after each layer is missing")
    fails(ex.check_layer_input, relu_everywhere, "embedding\\) is linear")

    def noisy_target(enc, dec, opt, h, keep, p):
        x_tilde = h * keep / (1 - p)
        loss = F.mse_loss(dec(torch.relu(enc(x_tilde))), x_tilde)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def unscaled(enc, dec, opt, h, keep, p):
        return sol.greedy_layer_step(enc, dec, opt, h, keep * (1 - p), p)

    fails(ex.check_greedy_layer_step, noisy_target, "clean h")
    fails(ex.check_greedy_layer_step, unscaled, "1/\\(1 − p\\)")


def test_dec_hints():
    fails(ex.check_target_distribution, lambda q: q**2 / (q**2).sum(1, keepdims=True), "left out f_j")
    fails(ex.check_target_distribution, lambda q: q**2 / q.sum(0), "not normalised")
    fails(ex.check_dec_gradients, lambda z, mu, p: tuple(-g for g in sol.dec_gradients(z, mu, p)), "sign")

    def no_d(z, mu, p):
        diff = z[:, None] - mu[None]
        q = 1 / (1 + (diff**2).sum(-1))
        q /= q.sum(1, keepdims=True)
        w = 2 * (p - q)
        return (w[:, :, None] * diff).sum(1), -(w[:, :, None] * diff).sum(0)

    fails(ex.check_dec_gradients, no_d, "d_ij")


def test_beyond_dec_hints():
    def rolled(images, shifts):
        g = images.reshape(-1, 28, 28)
        return np.stack([np.roll(x, (dy, dx), axis=(0, 1)) for x, (dx, dy) in zip(g, shifts)]).reshape(-1, 784)

    fails(ex.check_shift_images, rolled, "np.roll wraps around")
    fails(ex.check_shift_images, lambda im, sh: sol.shift_images(im, sh[:, ::-1]), "x and y are swapped")
    fails(ex.check_shift_images, lambda im, sh: sol.shift_images(im, -sh), "wrong way")
    fails(ex.check_shift_images, lambda im, sh: sol.shift_images(im, sh).reshape(-1, 28, 28), "flat again")

    def silhouette_self(Z, labels):  # a_i divided by |C|
        D = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(2))
        s = []
        for i in range(len(Z)):
            own = labels == labels[i]
            a = D[i, own].mean()
            b = min(D[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
            s.append((b - a) / max(a, b) if own.sum() > 1 else 0.0)
        return np.mean(s)

    fails(ex.check_silhouette, silhouette_self, "\\|C\\| − 1")
    fails(ex.check_silhouette, lambda Z, labels: sol.silhouette(Z, labels) * 1.1, "constant factor")


def test_a_checker_wants_a_function():
    with pytest.raises(TypeError, match="fn: expected your function"):
        ex.check_assign(np.zeros(3))


def test_masking_noise_wants_independent_entries():
    def same_count_per_row(X, f, rng):  # exactly round(f·d) zeros in every row: not independent draws
        out = X.copy()
        k = int(round(f * X.shape[1]))
        for row in out:
            row[rng.choice(X.shape[1], size=k, replace=False)] = 0
        return out

    fails(ex.check_masking_noise, same_count_per_row, "same number of zeros")
