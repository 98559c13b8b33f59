import itertools

import numpy as np
import pytest

from declib.nn import (ACTIVATIONS, LOSSES, MLP, SGD, Adam, get_activation, get_loss, gradient_check,
                       gradient_descent, relative_error, torch_gradients)

HIDDEN = sorted(ACTIVATIONS)
# each loss with an output activation whose range suits it
OUTPUT_FOR_LOSS = {"mse": "identity", "mae": "identity", "bce": "sigmoid", "cross_entropy": "softmax"}


def targets(loss, n, T, rng):
    if loss == "cross_entropy":
        return np.eye(T)[rng.integers(0, T, n)]
    if loss == "bce":
        return rng.uniform(size=(n, T))
    return rng.normal(size=(n, T))


def small_problem(hidden, output, loss, seed):
    rng = np.random.default_rng(seed)
    model = MLP([4, 6, 5, 3], activation=hidden, output=output, loss=loss, init="xavier", seed=seed)
    for k in model.params:  # non-zero biases, so their gradients are exercised too
        if k.startswith("b"):
            model.params[k] += rng.normal(scale=0.1, size=model.params[k].shape)
    X = rng.normal(size=(7, 4))
    return model, X, targets(loss, 7, 3, rng)


@pytest.mark.parametrize("z", [np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])])
def test_activations_are_stable(z):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for name, act in ACTIVATIONS.items():
            a = act(z[None, :])
            assert np.all(np.isfinite(a)), name
    assert ACTIVATIONS["sigmoid"](np.array([-1000.0]))[0] == 0.0
    assert ACTIVATIONS["sigmoid"](np.array([1000.0]))[0] == 1.0
    np.testing.assert_allclose(ACTIVATIONS["softmax"](np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])


@pytest.mark.parametrize("name", HIDDEN)
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(0)
    act = get_activation(name)
    z = rng.normal(size=(3, 5))
    g = rng.normal(size=(3, 5))
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = ((act(zp) - act(zm)) * g).sum() / (2 * h)
    assert relative_error(act.backward(z, act(z), g), numeric) < 1e-8


def test_lecture_derivatives():
    z = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_array_equal(ACTIVATIONS["relu"].derivative(z, None), [0, 0, 1, 1])
    np.testing.assert_array_equal(ACTIVATIONS["leaky_relu"].derivative(z, None), [0.01, 0.01, 1, 1])
    np.testing.assert_array_equal(get_activation("leaky_relu", slope=0.2).derivative(z, None), [0.2, 0.2, 1, 1])


@pytest.mark.parametrize("hidden, loss", list(itertools.product(HIDDEN, sorted(LOSSES))))
def test_gradient_check_every_activation_and_loss(hidden, loss):
    model, X, Y = small_problem(hidden, OUTPUT_FOR_LOSS[loss], loss, seed=1)
    errors = gradient_check(model, X, Y)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("output, loss", [(o, "mse") for o in HIDDEN] + [(o, "mae") for o in HIDDEN]
                         + [("softmax", "bce"), ("sigmoid", "cross_entropy")])
def test_gradient_check_every_output_activation(output, loss):
    model, X, Y = small_problem("tanh", output, loss, seed=2)
    errors = gradient_check(model, X, Y)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("hidden, loss", list(itertools.product(HIDDEN, sorted(LOSSES))))
def test_backprop_equals_autograd(hidden, loss):
    model, X, Y = small_problem(hidden, OUTPUT_FOR_LOSS[loss], loss, seed=3)
    model.compute_loss(X, Y)
    ours = model.backward(Y)
    theirs = torch_gradients(model, X, Y)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_gradient_check_catches_a_wrong_gradient():
    model, X, Y = small_problem("tanh", "softmax", "cross_entropy", seed=4)
    wrong = MLP.backward

    def broken(self, y):
        g = wrong(self, y)
        g["W1"] = g["W1"] * 1.01  # a 1% mistake in one layer
        return g

    model.backward = broken.__get__(model)
    errors = gradient_check(model, X, Y)
    assert errors["W1"] > 1e-3 and errors["W2"] < 1e-7


def test_exactly_zero_gradient_counts_as_agreement_but_a_real_error_does_not():
    model = MLP([2, 2], activation="identity", output="identity", loss="mae", seed=0)
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    Y = model.forward(X) + np.array([[1.0, 1.0], [-1.0, -1.0]])  # signs of ŷ − y balance: ∂L/∂b1 = 0 exactly
    model.compute_loss(X, Y)
    assert np.all(model.backward(Y)["b1"] == 0)
    assert max(gradient_check(model, X, Y).values()) < 1e-7
    assert relative_error(np.zeros(3), np.full(3, 1e-3), zero=1e-8) == 1.0


def test_fused_softmax_cross_entropy_never_takes_log_zero():
    model = MLP([2, 3], activation="relu", output="softmax", loss="cross_entropy", seed=0)
    model.params["W1"][:] = [[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0]]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = model.compute_loss(np.array([[1.0, 0.0]]), np.array([1]))  # the true class has p = e^-2000
        grads = model.backward(np.array([1]))
    assert loss == pytest.approx(2000.0) and all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_match_finite_differences(name):
    rng = np.random.default_rng(5)
    loss = get_loss(name)
    p = rng.uniform(0.1, 0.9, size=(4, 3))
    p = p / p.sum(1, keepdims=True) if name == "cross_entropy" else p
    y = targets(name, 4, 3, rng) if name != "mse" else rng.uniform(size=(4, 3))
    numeric = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += 1e-6
        pm[idx] -= 1e-6
        numeric[idx] = (loss(pp, y) - loss(pm, y)) / 2e-6
    assert relative_error(loss.grad(p, y), numeric) < 1e-7


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MLP([4, 3], activation="swish"), "activation: expected one of"),
        (lambda: MLP([4, 3], loss="hinge"), "loss: expected one of"),
        (lambda: MLP([4]), "sizes: expected at least two"),
        (lambda: MLP([4, 0, 3]), "sizes: expected at least two positive"),
        (lambda: MLP([4, 3], init="zeros"), "init: expected"),
        (lambda: MLP([4, 3]).forward(np.zeros((2, 5))), "X: expected 4 features per row, got shape \\(2, 5\\)"),
        (lambda: MLP([4, 3]).compute_loss(np.zeros((2, 4)), np.zeros((2, 2))), "y: expected shape \\(2, 3\\)"),
        (lambda: MLP([4, 3]).compute_loss(np.zeros((2, 4)), np.array([0, 3])), "y: expected 2 class indices"),
        (lambda: MLP([4, 3], progress=False).fit(np.zeros((2, 4)), np.array([0, 1, 2])), "X and y"),
        (lambda: MLP([4, 3], optimizer="rmsprop", progress=False).fit(np.zeros((2, 4)), np.array([0, 1])),
         "optimizer: expected"),
        (lambda: MLP([4, 3], epochs=0, progress=False).fit(np.zeros((2, 4)), np.array([0, 1])),
         "epochs: expected an integer >= 1"),
        (lambda: SGD({}, lr=0), "lr: expected"),
    ],
)
def test_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_backward_needs_forward():
    with pytest.raises(RuntimeError, match="forward"):
        MLP([2, 2]).backward(np.array([0]))


def test_training_learns_mnist_digits(mnist):
    X, y = mnist
    model = MLP([784, 64, 10], seed=0, dtype=np.float32, epochs=3, batch_size=64, lr=0.05, progress=False)
    assert model.fit(X[:3000], y[:3000]) is model
    history = model.history_
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert model.score(X[60000:62000], y[60000:62000]) > 0.85


def test_adam_and_sgd_minimise_a_quadratic():
    for make in (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.1)):
        params = {"w": np.array([3.0, -2.0])}
        opt = make(params)
        for _ in range(300):
            opt.step({"w": 2 * params["w"]})
        assert np.abs(params["w"]).max() < 1e-2


def test_gradient_descent_converges_or_diverges_with_the_learning_rate():
    grad = lambda x: np.array([2 * x[0], 20 * x[1]])  # f = x² + 10 y²  # noqa: E731
    good = gradient_descent(grad, [1.0, 1.0], lr=0.05, steps=200)
    assert np.abs(good[-1]).max() < 1e-3
    bad = gradient_descent(grad, [1.0, 1.0], lr=0.2, steps=200)  # 1 − 0.2·20 = −3: diverges
    assert np.abs(bad[-1]).max() > 1e3
    with pytest.raises(ValueError, match="lr"):
        gradient_descent(grad, [1.0, 1.0], lr=-1)


def test_mlp_estimator_contract():
    """Hyperparameters in __init__, stored unchanged; fit returns self and records history_; clone works."""
    from sklearn.base import clone

    X = np.random.default_rng(0).normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    model = MLP([4, 8, 2], seed=np.int64(3), epochs=4, lr=0.1, batch_size=16, progress=False)
    params = model.get_params()
    assert params["sizes"] == [4, 8, 2] and params["epochs"] == 4 and params["output"] == "softmax"
    twin = clone(model)  # a fresh network with the same hyperparameters: the same initial weights
    for name in model.params:
        np.testing.assert_array_equal(twin.params[name], model.params[name])
    assert model.fit(X, y) is model and len(model.history_["loss"]) == 4
    assert twin.fit(X, y).history_ == model.history_  # the same seed: the same minibatch order and result
    after_first = model.params["W1"].copy()
    first_loss = model.history_["loss"][-1]
    assert model.set_params(epochs=2).fit(X, y).history_ is not twin.history_ and len(model.history_["loss"]) == 2
    assert not np.array_equal(model.params["W1"], after_first)  # a second fit continues from the trained weights
    assert model.history_["loss"][0] < twin.history_["loss"][0] and model.history_["loss"][-1] <= first_loss
    assert not np.array_equal(clone(model).params["W1"], model.params["W1"])  # a clone is not trained
