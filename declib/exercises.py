"""Checkers for the exercises at the end of each notebook: the learner writes a function, a checker tests it.

Each ``check_<name>(fn)`` calls the learner's ``fn`` on a few random problems and compares the result with
declib's own implementation (the oracle). It answers in one of three ways:

* ``✓ name: ...`` (printed) and returns ``True`` when every problem agrees;
* raises :class:`ExerciseError` (an ``AssertionError``) with a specific hint — which shape, which entry, which term
  of the formula looks off — when one does not;
* prints ``… not attempted yet`` and returns ``None`` while ``fn`` still raises ``NotImplementedError`` (the stub as
  the notebook hands it out), so a notebook with untouched stubs still runs top to bottom.

The reference solutions are in :mod:`declib.solutions` (the notebooks fold the same code under "Solution"); the
tests run each of them, and planted wrong answers, through these checkers.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["ExerciseError", "check_class_means", "check_nearest_mean", "check_assign", "check_update",
           "check_kmeanspp_probabilities", "check_forward", "check_backward", "check_masking_noise",
           "check_train_step", "check_layer_input", "check_greedy_layer_step", "check_target_distribution",
           "check_dec_gradients", "check_shift_images", "check_silhouette"]


class ExerciseError(AssertionError):
    """The learner's function disagrees with declib's; the message says where and suggests why."""


class _NotAttempted(Exception):
    pass


def _exercise(name: str, where: str):
    """Wrap a checker: run it, print ✓ on success, turn a stub's NotImplementedError into a friendly note."""

    def wrap(checker):
        @functools.wraps(checker)
        def run(fn: Callable) -> bool | None:
            if not callable(fn):
                raise TypeError(f"fn: expected your function {name}, got {fn!r}")
            try:
                summary = checker(fn)
            except _NotAttempted:
                print(f"… {name} not attempted yet: fill in the function above ({where}) and run this cell again")
                return None
            except ExerciseError as exc:
                raise ExerciseError(f"✗ {name}: {exc}") from None
            print(f"✓ {name}: {summary}")
            return True

        run.__doc__ = (checker.__doc__ or "") + f"\n\n    Exercise of notebook {where}."
        return run

    return wrap


def _call(fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise _NotAttempted from None


def _array(value, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExerciseError(f"{what}: expected a NumPy array of numbers, got {type(value).__name__}") from None
    return arr


def _shape(got: np.ndarray, want: tuple, what: str, hint: str = "") -> None:
    if got.shape == want:
        return
    extra = ""
    if got.shape == want[::-1] and len(want) == 2:
        extra = " — transposed? (rows are points/samples, columns features/clusters)"
    elif got.size == int(np.prod(want)):
        extra = " — the right number of entries in the wrong shape (reshape or keepdims?)"
    raise ExerciseError(f"{what} has shape {got.shape}, expected {want}{extra}{'. ' + hint if hint else ''}")


def _close(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 1e-6, atol: float = 1e-9,
           hints: dict[str, np.ndarray] | None = None) -> None:
    """Equal within tolerance, or an ExerciseError naming the first entry that is off and a likely cause.

    ``hints`` maps a diagnosis ("you used D instead of D²") to what a function with that mistake would return;
    the first one that matches ``got`` is reported."""
    if not np.all(np.isfinite(got)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
        raise ExerciseError(f"{what} holds NaN or infinity (first at entry {list(bad)})")
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return
    for diagnosis, mistaken in (hints or {}).items():
        if mistaken.shape == got.shape and np.allclose(got, mistaken, rtol=1e-5, atol=1e-8):
            raise ExerciseError(f"{what} is off: {diagnosis}")
    ratio = got / np.where(want == 0, np.nan, want)
    finite = ratio[np.isfinite(ratio)]
    if finite.size and np.allclose(finite, finite.flat[0], rtol=1e-6) and not np.isclose(finite.flat[0], 1.0):
        raise ExerciseError(f"{what} is off by a constant factor {finite.flat[0]:.4g} everywhere: check the "
                            "constants and normalisations of your formula")
    idx = tuple(int(i) for i in np.argwhere(~np.isclose(got, want, rtol=rtol, atol=atol))[0])
    raise ExerciseError(f"{what} differs at entry {list(idx)}: got {got[idx]:.6g}, expected {want[idx]:.6g}")


def _problems(seed: int = 0, count: int = 3):
    return [np.random.default_rng(seed + k) for k in range(count)]


# ------------------------------------------------------------------------------------------------ notebook 00
@_exercise("class_means", "00, code exercise 1")
def check_class_means(fn):
    """``class_means(X, y)``: the mean image of every class, shape (K, d), row c = mean of the rows with y == c."""
    for rng in _problems():
        n, d, K = int(rng.integers(30, 80)), int(rng.integers(3, 9)), int(rng.integers(2, 5))
        X, y = rng.uniform(size=(n, d)), np.r_[np.arange(K), rng.integers(0, K, n - K)]
        want = np.stack([X[y == c].mean(axis=0) for c in range(K)])
        got = _array(_call(fn, X, y), "class_means(X, y)")
        _shape(got, (K, d), "class_means(X, y)", "one row per class, one column per pixel")
        counts = np.bincount(y, minlength=K)[:, None]
        _close(got, want, "class_means(X, y)", hints={
            "these are the sums of each class, not the means: divide by the class sizes": want * counts,
            "rows are not in class order: row c must be class c": want[::-1]})
    return "the mean of every class, in class order, on 3 random problems"


@_exercise("nearest_mean", "00, code exercise 2")
def check_nearest_mean(fn):
    """``nearest_mean(X, means)``: for every row of X the index of the closest mean (Euclidean), shape (n,)."""
    for rng in _problems(1):
        n, d, K = int(rng.integers(20, 60)), int(rng.integers(2, 7)), int(rng.integers(2, 6))
        X, means = rng.normal(size=(n, d)), rng.normal(size=(K, d))
        d2 = ((X[:, None, :] - means[None]) ** 2).sum(-1)
        got = _array(_call(fn, X, means), "nearest_mean(X, means)")
        _shape(got, (n,), "nearest_mean(X, means)", "one label per row of X")
        _close(got, d2.argmin(1).astype(float), "nearest_mean(X, means)", hints={
            "you picked the farthest mean (argmax instead of argmin)": d2.argmax(1).astype(float),
            "labels are shifted by one: indices start at 0": d2.argmin(1) + 1.0})
    return "the nearest mean for every point on 3 random problems"


# ------------------------------------------------------------------------------------------------ notebook 01
@_exercise("assign", "01, code exercise 1")
def check_assign(fn):
    """``assign(X, centers)``: the assignment step C(x_i) = argmin_j ‖x_i − m_j‖², shape (n,)."""
    from .kmeans import _lloyd_pass, _sq_norms

    for rng in _problems(2):
        n, d, K = int(rng.integers(50, 200)), int(rng.integers(2, 6)), int(rng.integers(2, 7))
        X, centers = rng.normal(size=(n, d)), rng.normal(size=(K, d))
        Xt = torch.from_numpy(X)
        want = _lloyd_pass(Xt, _sq_norms(Xt), torch.from_numpy(centers)[None], with_sums=False)[0][:, 0].numpy()
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
        got = _array(_call(fn, X, centers), "assign(X, centers)")
        _shape(got, (n,), "assign(X, centers)", "one cluster index per point")
        _close(got, want.astype(float), "assign(X, centers)", hints={
            "you picked the farthest centroid (argmax instead of argmin)": d2.argmax(1).astype(float),
            "cluster indices start at 0, not 1": want + 1.0})
    return "C(x_i) = argmin_j ‖x_i − m_j‖² on 3 random problems"


@_exercise("update", "01, code exercise 1")
def check_update(fn):
    """``update(X, labels, K)``: the update step m_j = mean of the points with label j, shape (K, d)."""
    for rng in _problems(3):
        n, d, K = int(rng.integers(40, 120)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
        X, labels = rng.normal(size=(n, d)), np.r_[np.arange(K), rng.integers(0, K, n - K)]
        want = np.stack([X[labels == j].mean(0) for j in range(K)])
        got = _array(_call(fn, X, labels, K), "update(X, labels, K)")
        _shape(got, (K, d), "update(X, labels, K)", "one centroid per cluster")
        sizes = np.bincount(labels, minlength=K)[:, None]
        _close(got, want, "update(X, labels, K)", hints={
            "these are the sums of each cluster, not the means: divide by |S_j|": want * sizes,
            "every centroid is the mean of all points: average only the points with label j":
                np.repeat(X.mean(0, keepdims=True), K, 0)})
    return "m_j = mean of S_j on 3 random problems"


@_exercise("kmeanspp_probabilities", "01, code exercise 2")
def check_kmeanspp_probabilities(fn):
    """``kmeanspp_probabilities(X, chosen)``: the probability that k-means++ draws each point next,
    D(x_i)² / Σ_i' D(x_i')², with D(x) the distance to the nearest centroid chosen so far. Shape (n,)."""
    for rng in _problems(4):
        n, d, c = int(rng.integers(30, 90)), int(rng.integers(2, 5)), int(rng.integers(2, 4))
        X = rng.normal(size=(n, d))
        chosen = X[rng.choice(n, size=c, replace=False)]
        d2 = ((X[:, None, :] - chosen[None]) ** 2).sum(-1)
        D2 = d2.min(1)
        got = _array(_call(fn, X, chosen), "kmeanspp_probabilities(X, chosen)")
        _shape(got, (n,), "kmeanspp_probabilities(X, chosen)", "one probability per point")
        if not np.isclose(got.sum(), 1.0):
            raise ExerciseError(f"the probabilities sum to {got.sum():.4g}, not 1: divide by Σ_i D(x_i)²")
        D = np.sqrt(D2)
        _close(got, D2 / D2.sum(), "kmeanspp_probabilities(X, chosen)", hints={
            "proportional to D(x), not D(x)²: square the distance": D / D.sum(),
            "D(x) must be the distance to the *nearest* chosen centroid, not the first": d2[:, 0] / d2[:, 0].sum(),
            "D(x) must be the distance to the *nearest* chosen centroid, not the sum over all":
                d2.sum(1) / d2.sum()})
    return "D(x)² / Σ D(x)² on 3 random problems"


# ------------------------------------------------------------------------------------------------ notebook 02
def _two_layer(rng):
    n, d, k, T = int(rng.integers(3, 8)), int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(1, 4))
    return rng.normal(size=(n, d)), rng.normal(size=(n, T)), rng.normal(size=(d, k)), rng.normal(size=(k, T))


@_exercise("forward", "02, code exercise 1")
def check_forward(fn):
    """``forward(X, W1, W2)`` for §4's network: returns ``(Z, H, Y_hat)`` with Z = X W1, H = tanh(Z),
    Ŷ = H W2 (no biases)."""
    for rng in _problems(5):
        X, _, W1, W2 = _two_layer(rng)
        out = _call(fn, X, W1, W2)
        if not isinstance(out, tuple) or len(out) != 3:
            raise ExerciseError("expected a tuple (Z, H, Y_hat)")
        Z, H, Y = (_array(o, name) for o, name in zip(out, ("Z", "H", "Y_hat")))
        z = X @ W1
        _shape(Z, z.shape, "Z", "Z = X W1 is n × k")
        _close(Z, z, "Z")
        _close(H, np.tanh(z), "H", hints={"H uses the sigmoid; §4's network uses tanh": 1 / (1 + np.exp(-z)),
                                          "H is missing the activation: H = tanh(Z)": z})
        _close(Y, np.tanh(z) @ W2, "Y_hat", hints={"Ŷ has an activation; the output of §4's network is linear":
                                                    np.tanh(np.tanh(z) @ W2)})
    return "Z = X W1, H = tanh(Z), Ŷ = H W2 on 3 random problems"


@_exercise("backward", "02, code exercise 1")
def check_backward(fn):
    """``backward(X, Y, W1, W2)``: the gradients ``(dW1, dW2)`` of L = mean over all n·T entries of (Ŷ − Y)² for
    §4's network (compared with :meth:`declib.nn.MLP.backward`)."""
    from .nn import MLP

    for rng in _problems(6):
        X, Y, W1, W2 = _two_layer(rng)
        net = MLP([W1.shape[0], W1.shape[1], W2.shape[1]], activation="tanh", output="identity", loss="mse")
        net.params.update(W1=W1.copy(), W2=W2.copy(), b1=np.zeros(W1.shape[1]), b2=np.zeros(W2.shape[1]))
        net.compute_loss(X, Y)
        want = net.backward(Y)
        out = _call(fn, X, Y, W1, W2)
        if not isinstance(out, tuple) or len(out) != 2:
            raise ExerciseError("expected a tuple (dW1, dW2)")
        dW1, dW2 = _array(out[0], "dW1"), _array(out[1], "dW2")
        _shape(dW2, W2.shape, "dW2", "a gradient has the shape of its weight: Hᵀ δ2")
        _shape(dW1, W1.shape, "dW1", "a gradient has the shape of its weight: Xᵀ δ1")
        Z = X @ W1
        H = np.tanh(Z)
        delta2 = 2 * (H @ W2 - Y) / Y.size
        _close(dW2, want["W2"], "dW2", hints={
            "δ2 has the sign flipped: ∂L/∂Ŷ = 2(Ŷ − Y)/(nT)": -want["W2"]})
        _close(dW1, want["W1"], "dW1", hints={
            "dW1 is missing f'(Z) = 1 − tanh²(Z): δ1 = (δ2 W2ᵀ) ⊙ f'(Z)": X.T @ (delta2 @ W2.T),
            "f'(Z) is the sigmoid's derivative; the hidden units use tanh":
                X.T @ ((delta2 @ W2.T) * (1 / (1 + np.exp(-Z))) * (1 - 1 / (1 + np.exp(-Z))))})
    return "dW1 and dW2 equal MLP.backward on 3 random problems"


# ------------------------------------------------------------------------------------------------ notebook 03
@_exercise("masking_noise", "03, code exercise 1")
def check_masking_noise(fn):
    """``masking_noise(X, fraction, rng)``: a copy of X with each entry independently set to 0 with probability
    ``fraction`` (the rest unchanged), drawn with the NumPy generator ``rng``; X itself is left as it was."""
    rng = np.random.default_rng(7)
    X = rng.uniform(0.1, 1.0, size=(400, 50))
    before = X.copy()
    for fraction in (0.0, 0.25, 0.6):
        got = _array(_call(fn, X, fraction, np.random.default_rng(1)), "masking_noise(X, fraction, rng)")
        if not np.array_equal(X, before):
            raise ExerciseError("X itself was changed: corrupt a copy (x * mask makes one)")
        _shape(got, X.shape, "masking_noise(X, fraction, rng)")
        zero = got == 0
        kept = ~zero
        if not np.allclose(got[kept], X[kept]):
            raise ExerciseError("entries that were not masked changed: masking noise only sets entries to 0 (no "
                                "1/(1 − p) scaling: that is dropout)")
        share = zero.mean()
        if abs(share - fraction) > 0.02:
            raise ExerciseError(f"{share:.1%} of the entries are 0, expected about {fraction:.0%}: draw one uniform "
                                "number per entry and zero it when it is below the fraction")
        if fraction > 0 and zero.sum(1).std() == 0:
            raise ExerciseError("every row has the same number of zeros: draw each entry independently")
    again = _array(_call(fn, X, 0.3, np.random.default_rng(1)), "masking_noise")
    other = _array(_call(fn, X, 0.3, np.random.default_rng(2)), "masking_noise")
    if not np.array_equal(again, _array(_call(fn, X, 0.3, np.random.default_rng(1)), "masking_noise")):
        raise ExerciseError("two calls with generators of the same seed differ: draw from rng, not np.random")
    if np.array_equal(again, other):
        raise ExerciseError("different generators give the same mask: draw the mask from rng")
    return "independent zeros at the right rate, the rest untouched, reproducible from rng"


def _tiny_autoencoder(seed: int):
    from .autoencoder import Autoencoder

    return Autoencoder([12, 4], output_activation="sigmoid", seed=seed)


@_exercise("train_step", "03, code exercise 2")
def check_train_step(fn):
    """``train_step(model, optimizer, xb)``: one step of minibatch gradient descent on the mean squared
    reconstruction error of ``xb``; returns the loss before the step as a float."""
    import torch.nn.functional as F

    xb = torch.from_numpy(np.random.default_rng(8).uniform(size=(16, 12)).astype(np.float32))
    ours, theirs = _tiny_autoencoder(0), _tiny_autoencoder(0)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.5)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.5)
    for step in range(2):  # two steps: a missing zero_grad shows up in the second
        opt_ours.zero_grad()
        loss = F.mse_loss(ours(xb), xb)
        loss.backward()
        opt_ours.step()
        got = _call(fn, theirs, opt_theirs, xb)
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise ExerciseError(f"return the loss as a number (loss.item()), got {type(got).__name__}") from None
        if not np.isclose(got, loss.item(), rtol=1e-5):
            ratio = got / loss.item()
            cause = (" — the sum instead of the mean? F.mse_loss averages over every entry" if ratio > 2 else
                     " — reconstruct xb itself: the target is the input" if step == 0 else "")
            raise ExerciseError(f"step {step + 1}: loss {got:.6g}, expected {loss.item():.6g}{cause}")
        same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours.parameters(), theirs.parameters()))
        if not same:
            unchanged = all(torch.equal(a, b) for a, b in zip(_tiny_autoencoder(0).parameters(),
                                                              theirs.parameters()))
            if unchanged:
                raise ExerciseError("the weights did not change: call loss.backward() and optimizer.step()")
            raise ExerciseError(f"after step {step + 1} the weights differ from one plain step"
                                + (": call optimizer.zero_grad() before backward, or gradients pile up"
                                   if step == 1 else ""))
    return "the loss and the weights after two steps match plain SGD"


# ------------------------------------------------------------------------------------------------ notebook 04
@_exercise("layer_input", "04, code exercise 1")
def check_layer_input(fn):
    """``layer_input(model, X, l)``: the codes h^(l) that layer pair l (0-based) is trained on — X pushed through
    the first l encoder layers of a :class:`~declib.stacked.StackedAutoencoder`, with ReLU after each (every
    encoder layer but the last has one). ``layer_input(model, X, 0)`` is X."""
    from .stacked import StackedAutoencoder

    model = StackedAutoencoder((10, 8, 6, 3), seed=0)
    X = torch.from_numpy(np.random.default_rng(9).uniform(size=(20, 10)).astype(np.float32))
    enc, _ = model.linears()
    for l in range(4):
        want = model.encode_prefix(X, l).numpy()
        got = _array(_call(fn, model, X, l), f"layer_input(model, X, {l})")
        _shape(got, want.shape, f"layer_input(model, X, {l})", f"pair {l} takes inputs of width {want.shape[1]}")
        with torch.no_grad():
            no_relu = X
            for k in range(l):
                no_relu = enc[k](no_relu)
            hints = {"the ReLU after each layer is missing": no_relu.numpy()}
            if l == len(enc):  # all layers: the last one (the embedding) is linear
                relu_last = torch.relu(enc[l - 1](model.encode_prefix(X, l - 1))).numpy()
                hints["the encoder's last layer (the embedding) is linear: no ReLU after it"] = relu_last
        _close(got, want, f"layer_input(model, X, {l})", rtol=1e-5, atol=1e-6, hints=hints)
    return "h^(l) for l = 0..3 on a small stacked autoencoder"


@_exercise("greedy_layer_step", "04, code exercise 2")
def check_greedy_layer_step(fn):
    """``greedy_layer_step(enc, dec, optimizer, h, keep, p)``: one denoising step for a layer pair: corrupt the
    input with the dropout mask ``keep`` (0/1, scaled by 1/(1 − p)), encode with ReLU, decode linearly, and
    minimise the mean squared error to the *clean* h. Returns the loss before the step as a float."""
    import torch.nn.functional as F

    rng = np.random.default_rng(10)
    h = torch.from_numpy(rng.uniform(size=(24, 8)).astype(np.float32))
    p = 0.2
    keep = torch.from_numpy((rng.uniform(size=h.shape) >= p).astype(np.float32))

    def pair(seed):
        torch.manual_seed(seed)
        return torch.nn.Linear(8, 5), torch.nn.Linear(5, 8)

    with torch.random.fork_rng():
        (e1, d1), (e2, d2) = pair(0), pair(0)
    variants = {}
    for name, target_clean, scale, relu in [("ok", True, True, True), ("noisy target", False, True, True),
                                            ("no scale", True, False, True), ("no relu", True, True, False)]:
        e, d = copy.deepcopy(e1), copy.deepcopy(d1)
        opt = torch.optim.SGD(list(e.parameters()) + list(d.parameters()), lr=0.3)
        x_tilde = h * keep / (1 - p) if scale else h * keep
        code = torch.relu(e(x_tilde)) if relu else e(x_tilde)
        loss = F.mse_loss(d(code), h if target_clean else x_tilde)
        opt.zero_grad()
        loss.backward()
        opt.step()
        variants[name] = (loss.item(), e.weight.detach().clone())
    opt = torch.optim.SGD(list(e2.parameters()) + list(d2.parameters()), lr=0.3)
    got = _call(fn, e2, d2, opt, h, keep, p)
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise ExerciseError(f"return the loss as a number (loss.item()), got {type(got).__name__}") from None
    if np.isclose(got, variants["ok"][0], rtol=1e-5) and torch.allclose(e2.weight, variants["ok"][1], atol=1e-6):
        return "the loss and the encoder's weights after one step match"
    hints = {"noisy target": "the pair must reconstruct the clean h, not the corrupted input",
             "no scale": "inverted dropout scales the kept entries by 1/(1 − p)",
             "no relu": "the code h^(l+1) = ReLU(enc(x̃)): the ReLU is missing"}
    for name, hint in hints.items():
        if np.isclose(got, variants[name][0], rtol=1e-5):
            raise ExerciseError(hint)
    if torch.equal(e2.weight, e1.weight):
        raise ExerciseError("the encoder's weights did not change: backward() and optimizer.step()")
    raise ExerciseError(f"loss {got:.6g}, expected {variants['ok'][0]:.6g}: corrupt, encode with ReLU, decode, "
                        "MSE to the clean h, one optimizer step")


# ------------------------------------------------------------------------------------------------ notebook 05
def _soft(rng, n=None, K=None, D=None):
    n = n or int(rng.integers(20, 60))
    K = K or int(rng.integers(2, 6))
    D = D or int(rng.integers(2, 5))
    z, mu = rng.normal(size=(n, D)), rng.normal(size=(K, D))
    kernel = 1.0 / (1.0 + ((z[:, None] - mu[None]) ** 2).sum(-1))
    return z, mu, kernel / kernel.sum(1, keepdims=True)


@_exercise("target_distribution", "05, code exercise 1")
def check_target_distribution(fn):
    """``target_distribution(q)``: p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j') with f_j = Σ_i q_ij (NumPy)."""
    from .dec import target_distribution

    for rng in _problems(11):
        _, _, q = _soft(rng)
        want = target_distribution(torch.from_numpy(q)).numpy()
        got = _array(_call(fn, q.copy()), "target_distribution(q)")
        _shape(got, q.shape, "target_distribution(q)", "p has the shape of q: points × clusters")
        no_f = q**2 / (q**2).sum(1, keepdims=True)
        wrong_axis = q**2 / q.sum(1, keepdims=True)
        _close(got, want, "target_distribution(q)", hints={
            "you left out f_j: divide q_ij² by the soft cluster size f_j = Σ_i q_ij before normalising": no_f,
            "f_j sums over the points i (axis 0), not over the clusters":
                wrong_axis / wrong_axis.sum(1, keepdims=True),
            "the rows are not normalised: p_ij = w_ij / Σ_j' w_ij' with w_ij = q_ij² / f_j": q**2 / q.sum(0)})
    return "p_ij equals declib.dec.target_distribution on 3 random problems"


@_exercise("dec_gradients", "05, code exercise 2")
def check_dec_gradients(fn):
    """``dec_gradients(z, mu, p)``: ∂L/∂z_i and ∂L/∂μ_j of L = KL(P‖Q) with P fixed and α = 1 (the paper's
    eq. 4–5), as NumPy arrays ``(grad_z, grad_mu)`` of the shapes of z and μ."""
    from .dec import kl_gradients

    for rng in _problems(12):
        z, mu, q = _soft(rng)
        p = q**2 / q.sum(0)
        p /= p.sum(1, keepdims=True)
        gz, gm = (t.numpy() for t in kl_gradients(torch.from_numpy(z), torch.from_numpy(mu), torch.from_numpy(p)))
        out = _call(fn, z.copy(), mu.copy(), p.copy())
        if not isinstance(out, tuple) or len(out) != 2:
            raise ExerciseError("expected a tuple (grad_z, grad_mu)")
        got_z, got_mu = _array(out[0], "grad_z"), _array(out[1], "grad_mu")
        _shape(got_z, z.shape, "grad_z", "one gradient row per point z_i")
        _shape(got_mu, mu.shape, "grad_mu", "one gradient row per centroid μ_j")
        diff = z[:, None] - mu[None]
        no_d = 2 * ((p - q)[:, :, None] * diff)
        _close(got_z, gz, "grad_z", hints={
            "the factor d_ij = (1 + ‖z_i − μ_j‖²)⁻¹ is missing from the sum": no_d.sum(1),
            "the sign is flipped: ∂L/∂z_i = 2 Σ_j d_ij (p_ij − q_ij)(z_i − μ_j)": -gz})
        _close(got_mu, gm, "grad_mu", hints={
            "∂L/∂μ_j has the opposite sign of the z-gradient's terms: −2 Σ_i d_ij (p_ij − q_ij)(z_i − μ_j)": -gm,
            "the factor d_ij is missing from the sum": -no_d.sum(0)})
    return "∂L/∂z and ∂L/∂μ equal declib.dec.kl_gradients on 3 random problems"


# ------------------------------------------------------------------------------------------------ notebook 06
@_exercise("shift_images", "06, code exercise 1")
def check_shift_images(fn):
    """``shift_images(images, shifts)``: image i of ``images`` (n × 784, 28 × 28 row-major, NumPy) moved right by
    ``shifts[i, 0]`` and down by ``shifts[i, 1]`` whole pixels, zeros moved in (the same as
    :func:`declib.augment.shift_images`)."""
    from .augment import shift_images

    for rng in _problems(21):
        n = int(rng.integers(3, 7))
        images = rng.uniform(0.05, 1.0, size=(n, 784))
        shifts = rng.integers(-3, 4, size=(n, 2))
        shifts[0] = (2, -1)  # every problem has a shift in both directions
        want = shift_images(torch.from_numpy(images), torch.from_numpy(shifts)).numpy()
        got = _array(_call(fn, images.copy(), shifts.copy()), "shift_images(images, shifts)")
        _shape(got, images.shape, "shift_images(images, shifts)", "return the shifted images flat again: n × 784")
        grid = images.reshape(n, 28, 28)
        rolled = np.stack([np.roll(g, (dy, dx), axis=(0, 1)) for g, (dx, dy) in zip(grid, shifts)]).reshape(n, 784)
        swapped = shift_images(torch.from_numpy(images), torch.from_numpy(shifts[:, ::-1].copy())).numpy()
        flipped = shift_images(torch.from_numpy(images), torch.from_numpy(-shifts)).numpy()
        _close(got, want, "shift_images(images, shifts)", hints={
            "the pixels that leave one edge come back at the other (np.roll wraps around): fill with zeros "
            "instead": rolled,
            "x and y are swapped: shifts[i, 0] moves the image right (along the columns), shifts[i, 1] down "
            "(along the rows)": swapped,
            "the shifts go the wrong way: a positive shifts[i, 0] moves the digit to the right, so the new pixel "
            "(r, c) is the old pixel (r − dy, c − dx)": flipped})
    return "equals declib.augment.shift_images on 3 random batches"


@_exercise("silhouette", "06, code exercise 2")
def check_silhouette(fn):
    """``silhouette(Z, labels)``: the mean silhouette s̄ = mean_i (b_i − a_i) / max(a_i, b_i) of a partition, with
    Euclidean distances, a_i the mean distance to the other members of i's cluster and b_i the smallest mean
    distance to the members of another cluster (s_i = 0 for a point alone in its cluster)."""
    from sklearn.metrics import silhouette_score

    def variant(Z, labels, own_includes_self=False, b_all_others=False, squared=False):
        D = np.sqrt(((Z[:, None, :] - Z[None, :, :]) ** 2).sum(2))
        D = D**2 if squared else D
        s = np.zeros(len(Z))
        for i in range(len(Z)):
            own = labels == labels[i]
            if own.sum() == 1:
                continue
            a = D[i, own].sum() / (own.sum() if own_includes_self else own.sum() - 1)
            if b_all_others:
                b = D[i, ~own].mean()
            else:
                b = min(D[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
            s[i] = (b - a) / max(a, b)
        return np.array(s.mean())

    for rng in _problems(22):
        K = int(rng.integers(3, 6))
        centres = rng.normal(0, 3, size=(K, 4))
        labels = rng.integers(0, K, 60)
        labels[:K] = np.arange(K)
        Z = centres[labels] + rng.normal(0, 1, size=(60, 4))
        want = np.array(silhouette_score(Z, labels))
        got = _array(_call(fn, Z.copy(), labels.copy()), "silhouette(Z, labels)")
        _shape(got, (), "silhouette(Z, labels)", "return one number, the mean of s_i over all points")
        _close(got, want, "silhouette(Z, labels)", rtol=1e-6, hints={
            "a_i counts the point itself: divide the sum of distances to its own cluster by |C| − 1, not |C|":
                variant(Z, labels, own_includes_self=True),
            "b_i is the mean distance to the *nearest* other cluster, not to all other points":
                variant(Z, labels, b_all_others=True),
            "use distances ‖z_i − z_k‖, not squared distances": variant(Z, labels, squared=True)})
    return "equals sklearn.metrics.silhouette_score on 3 random partitions"
