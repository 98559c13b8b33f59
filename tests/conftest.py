"""Shared fixtures. Tests never touch the network and never write into a real user cache."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty declib cache; DECLIB_DATA (the shared MNIST copy) is left as it is."""
    monkeypatch.setenv("DECLIB_CACHE", str(tmp_path_factory.mktemp("cache")))


def _have_mnist() -> bool:
    from declib.data import find_mnist

    return find_mnist() is not None


@pytest.fixture(scope="session")
def mnist():
    """All 70,000 MNIST digits (X, y). CI points DECLIB_DATA at the shared verified copy."""
    from declib.data import find_mnist, load_mnist

    if os.environ.get("DECLIB_DATA") is None and find_mnist() is None:
        pytest.fail("MNIST not found: set DECLIB_DATA to a folder holding mnist/ (CI uses ../shared/data)")
    return load_mnist("all", download=False)


@pytest.fixture
def record_lr(monkeypatch):
    """``rates = record_lr(torch.optim.Adam)``: from then on, the learning rate of every step of that optimizer
    class is appended to ``rates``."""

    def install(optimizer_class):
        rates = []
        step = optimizer_class.step

        def spy(self, *args, **kwargs):
            rates.append(self.param_groups[0]["lr"])
            return step(self, *args, **kwargs)

        monkeypatch.setattr(optimizer_class, "step", spy)
        return rates

    return install
