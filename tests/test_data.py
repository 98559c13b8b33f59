import gzip
import hashlib
import urllib.error

import numpy as np
import pytest

from declib import data
from declib.data import MNISTUnavailableError, download_mnist, load_mnist, read_idx, subset, subset_indices


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file for a uint8 array: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip_raw_and_gzip(tmp_path, images, compress):
    raw = idx_bytes(images)
    path = tmp_path / "imgs"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path, expected_magic=2051)
    assert out.shape == (7, 28, 28) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_labels_magic(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "l").write_bytes(idx_bytes(labels))
    assert read_idx(tmp_path / "l", expected_magic=2049).tolist() == list(range(10))


def test_wrong_magic_number(tmp_path, images):
    (tmp_path / "x").write_bytes(idx_bytes(images))
    with pytest.raises(ValueError, match="wrong IDX magic number 2051, expected 2049"):
        read_idx(tmp_path / "x", expected_magic=2049)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_file(tmp_path, images, compress):
    raw = idx_bytes(images)[:-100]
    (tmp_path / "t").write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "t")


def test_truncated_gzip_stream(tmp_path, images):
    (tmp_path / "t.gz").write_bytes(gzip.compress(idx_bytes(images))[:-50])
    with pytest.raises(ValueError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "t.gz")


def test_trailing_bytes_and_bad_header(tmp_path, images):
    (tmp_path / "long").write_bytes(idx_bytes(images) + b"\x00")
    with pytest.raises(ValueError, match="longer than its header"):
        read_idx(tmp_path / "long")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------ fake MNIST
@pytest.fixture
def fake_mnist(monkeypatch, tmp_path):
    """Tiny synthetic MNIST files with checksums registered in place of the real ones; returns name -> gz bytes."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(20) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(5) % 10,
    }
    files, table = {}, {}
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        files[name] = gzip.compress(raw)
        table[name] = (2051 if arr.ndim == 3 else 2049, hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(data, "MNIST_FILES", table)
    monkeypatch.delenv("DECLIB_DATA", raising=False)
    data._MEMO.clear()
    return files


def serve(monkeypatch, files, bad=()):
    """Replace the network with a dict lookup; names in ``bad`` are served corrupted."""
    calls = []

    def fake_fetch(url, dest, timeout):
        calls.append(url)
        name = url.rsplit("/", 1)[1][: -len(".gz")]
        payload = files[name]
        if name in bad:
            payload = gzip.compress(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x07")
        dest.write_bytes(payload)

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    return calls


def test_download_then_load_from_cache(monkeypatch, fake_mnist):
    calls = serve(monkeypatch, fake_mnist)
    X, y = load_mnist("all")
    assert X.shape == (25, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert len(calls) == 4
    cache = data.cache_dir() / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in fake_mnist)
    X2, _ = load_mnist("train")  # now from the cache: no new download
    assert len(calls) == 4 and X2.shape == (20, 784)
    np.testing.assert_array_equal(X2, X[:20])


def test_checksum_mismatch_leaves_nothing_in_cache(monkeypatch, fake_mnist):
    serve(monkeypatch, fake_mnist, bad={"train-labels-idx1-ubyte"})
    with pytest.raises(MNISTUnavailableError) as err:
        load_mnist()
    msg = str(err.value)
    assert "checksum mismatch" in msg and "train-labels-idx1-ubyte" in msg
    assert "Put the four MNIST files" in msg
    cache = data.cache_dir() / "mnist"
    left = sorted(p.name for p in cache.iterdir())
    assert "train-labels-idx1-ubyte.gz" not in left
    assert not [n for n in left if n.endswith(".part")], left


def test_second_mirror_is_tried(monkeypatch, fake_mnist, tmp_path):
    calls = []

    def flaky(url, dest, timeout):
        calls.append(url)
        if url.startswith("https://first"):
            raise urllib.error.URLError("connection refused")
        dest.write_bytes(fake_mnist[url.rsplit("/", 1)[1][:-3]])

    monkeypatch.setattr(data, "_fetch", flaky)
    download_mnist(tmp_path / "m", mirrors=["https://first/", "https://second/"], progress=False)
    assert len(calls) == 8 and len(list((tmp_path / "m").iterdir())) == 4


def test_offline_error_says_where_to_put_files(monkeypatch, fake_mnist):
    def offline(url, dest, timeout):
        dest.write_bytes(b"partial")  # a half-written download must not survive
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(MNISTUnavailableError) as err:
        load_mnist()
    msg = str(err.value)
    assert "Name or service not known" in msg
    assert str(data.cache_dir() / "mnist") in msg and "DECLIB_DATA" in msg
    assert list((data.cache_dir() / "mnist").iterdir()) == []


def test_no_download_flag(monkeypatch, fake_mnist):
    with pytest.raises(MNISTUnavailableError, match="download=False"):
        load_mnist(download=False)


def test_corrupt_file_in_data_folder_is_reported(monkeypatch, fake_mnist, tmp_path):
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    for name, payload in fake_mnist.items():
        (folder / f"{name}.gz").write_bytes(payload)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.arange(5) % 3)))
    monkeypatch.setenv("DECLIB_DATA", str(tmp_path / "root"))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        load_mnist("test")
    X, _ = load_mnist("train")  # the intact split still loads, from DECLIB_DATA
    assert X.shape == (20, 784)


def test_bad_split():
    with pytest.raises(ValueError, match="split must be"):
        load_mnist("validation")


# ---------------------------------------------------------------------------------------------- real MNIST
def test_real_mnist_shapes_and_canonical_counts(mnist):
    X, y = mnist
    assert X.shape == (70000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y[:60000]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(X[:60000].mean() - 0.1307) < 5e-5 and abs(X[:60000].std() - 0.3081) < 5e-5


# ---------------------------------------------------------------------------------------------------- subsets
def test_subset_is_stratified_and_seeded():
    y = np.repeat(np.arange(10), [100, 200, 50, 50, 100, 100, 100, 100, 100, 100])
    X = np.arange(len(y))[:, None].astype(np.float32)
    Xs, ys = subset(X, y, 100, seed=3)
    assert np.bincount(ys).tolist() == [10, 20, 5, 5, 10, 10, 10, 10, 10, 10]
    np.testing.assert_array_equal(y[Xs[:, 0].astype(int)], ys)
    assert np.array_equal(subset_indices(y, 100, 3), subset_indices(y, 100, 3))
    assert not np.array_equal(subset_indices(y, 100, 3), subset_indices(y, 100, 4))
    assert len(subset_indices(y, 7, 0)) == 7


def test_subset_bad_n():
    y = np.zeros(5, dtype=int)
    with pytest.raises(ValueError, match="n: expected an integer in \\[1, 5\\]"):
        subset_indices(y, 6)
    with pytest.raises(ValueError, match="X and y"):
        subset(np.zeros((4, 2)), y, 2)


def test_prepare_mnist_downloads_once_then_finds_the_files(monkeypatch, fake_mnist):
    """What a notebook's first cell prints on Colab after installing the course."""
    calls = serve(monkeypatch, fake_mnist)
    folder = data.cache_dir() / "mnist"
    assert data.prepare_mnist(progress=False) == f"MNIST: downloaded the four files into {folder} (SHA-256 checked)"
    assert len(calls) == 4
    assert data.prepare_mnist() == f"MNIST: found the four files in {folder}"
    assert len(calls) == 4
