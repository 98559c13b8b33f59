import numpy as np
import pytest
import torch
from sklearn.base import clone

from declib._util import (ParamsMixin, as_float_array, as_float_tensor, atomic_path, batched, check_choice,
                          check_fitted, check_int, check_number, check_seed, make_optimizer, minibatches, numpy_rng,
                          torch_generator)
from declib.autoencoder import Autoencoder


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert not target.exists()  # nothing at the final name while writing
    assert target.read_text() == "new"
    assert list(target.parent.iterdir()) == [target]


def test_atomic_path_gives_the_file_a_normal_mode(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "r.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_atomic_path_leaves_the_old_file_and_no_part_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


# ----------------------------------------------------------------------------------------- the one contract
def test_integers_type_errors_and_range_errors():
    assert check_int(np.int64(3), "k", 1) == 3 and type(check_int(np.int32(3), "k")) is int
    for bad in (True, 2.0, "3", None):
        with pytest.raises(TypeError, match="k: expected an integer"):
            check_int(bad, "k", 1)
    with pytest.raises(ValueError, match=r"k: expected an integer in \[1, 5\], got 6"):
        check_int(6, "k", 1, 5)
    assert check_number(np.float32(0.5), "lr", 0.0, low_open=True) == 0.5
    with pytest.raises(TypeError, match="lr: expected a number"):
        check_number("0.1", "lr")
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"lr: expected a finite number in \(0, inf\)"):
            check_number(bad, "lr", 0.0, low_open=True)
    with pytest.raises(ValueError, match="optimizer: expected one of 'sgd', 'adam', got 'lbfgs'"):
        check_choice("lbfgs", "optimizer", ("sgd", "adam"))


def test_data_conversion_checks_shape_type_and_finiteness():
    t = as_float_tensor(np.arange(6).reshape(3, 2))
    assert t.dtype == torch.float64 and t.shape == (3, 2)
    assert as_float_tensor(np.zeros((2, 2), np.float32)).dtype == torch.float32
    assert as_float_tensor(np.zeros((2, 2)), dtype=torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="X: expected a numeric array"):
        as_float_tensor(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="Z: expected a 2-D array"):
        as_float_tensor(np.zeros(3), "Z")
    with pytest.raises(ValueError, match="X: expected at least one sample"):
        as_float_tensor(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="X: contains NaN"):
        as_float_tensor(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="centers: expected 3 features per row"):
        as_float_array(np.zeros((2, 4)), "centers", n_features=3)
    with pytest.raises(ValueError, match="X: contains NaN or infinity"):
        as_float_array(np.array([[np.inf]]))


def test_seed_none_is_fresh_and_integers_repeat():
    assert numpy_rng(5).integers(10**9) == numpy_rng(np.int64(5)).integers(10**9)
    assert numpy_rng(None).integers(2**62) != numpy_rng(None).integers(2**62)  # fresh entropy each time
    g = np.random.default_rng(0)
    assert numpy_rng(g) is g
    cpu = torch.device("cpu")
    draw = lambda seed: torch.rand(3, generator=torch_generator(seed, cpu))  # noqa: E731
    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(torch.rand(3, generator=torch_generator(None, cpu)),
                           torch.rand(3, generator=torch_generator(None, cpu)))
    with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
        check_seed(-1)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        check_seed(1.5)
    state = torch.random.get_rng_state()
    Autoencoder([6, 2], seed=None)  # no function leaves torch's global generator changed
    assert torch.equal(state, torch.random.get_rng_state())
    a, b = Autoencoder([6, 2], seed=None), Autoencoder([6, 2], seed=None)
    assert not torch.equal(a.encoder[0].weight, b.encoder[0].weight)  # None: fresh weights
    assert torch.equal(Autoencoder([6, 2]).encoder[0].weight, Autoencoder([6, 2], seed=0).encoder[0].weight)


def test_minibatches_visit_every_index_once_per_epoch():
    stream = minibatches(10, 4, torch_generator(0, torch.device("cpu")), torch.device("cpu"))
    epoch = [next(stream) for _ in range(3)]
    assert [len(b) for b in epoch] == [4, 4, 2]
    assert sorted(torch.cat(epoch).tolist()) == list(range(10))
    again = torch.cat([next(stream) for _ in range(3)])
    assert sorted(again.tolist()) == list(range(10)) and not torch.equal(again, torch.cat(epoch))
    dropped = minibatches(10, 4, torch_generator(0, torch.device("cpu")), torch.device("cpu"), drop_last=True)
    assert [len(next(dropped)) for _ in range(4)] == [4, 4, 4, 4]  # the short batch is skipped


def test_batched_equals_one_pass():
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    calls = []
    out = batched(lambda x: calls.append(len(x)) or x * 2, X, batch_size=4)
    assert torch.equal(out, X * 2) and calls == [4, 4, 2]
    pairs = batched(lambda a, b: (a - b).sum(1), X, 2 * X, batch_size=3)  # the same rows of every array
    assert torch.allclose(pairs, -X.sum(1))
    A = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(batched(lambda a: a + 1, A, batch_size=4), A + 1)  # NumPy in, NumPy out


def test_one_optimizer_factory_for_torch_and_numpy():
    w = torch.nn.Parameter(torch.ones(2))
    assert isinstance(make_optimizer("adam", [w], 1e-3), torch.optim.Adam)
    sgd = make_optimizer("sgd", [w], 0.1, momentum=0.5)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    params = {"W1": np.ones(2)}
    numpy_sgd = make_optimizer("sgd", params, 0.5, momentum=0.0)
    numpy_sgd.step({"W1": np.ones(2)})
    np.testing.assert_allclose(params["W1"], [0.5, 0.5])  # the hand-written optimiser updates in place
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        make_optimizer("rmsprop", [w], 0.1)
    with pytest.raises(ValueError, match="lr: expected"):
        make_optimizer("sgd", [w], 0.0)


class _Toy(ParamsMixin):
    def __init__(self, a=1, *, b="x"):
        self.a, self.b = a, b


def test_params_mixin_supports_sklearn_clone():
    toy = _Toy(a=[1, 2], b="y")
    assert toy.get_params() == {"a": [1, 2], "b": "y"}
    twin = clone(toy)
    assert twin.get_params() == toy.get_params() and twin.a is not toy.a
    assert toy.set_params(a=3) is toy and toy.a == 3
    with pytest.raises(ValueError, match="c: not a parameter of _Toy"):
        toy.set_params(c=1)
    with pytest.raises(RuntimeError, match="this _Toy is not fitted yet"):
        check_fitted(toy, "labels_")
