"""data: DataLoader, splitting, standardization, load_digits, and the MNIST IDX reader/downloader.

The MNIST tests never touch the network: they write tiny IDX files themselves and replace
`minigrad.data._download` with a function that copies them.
"""

import gzip
import hashlib
import shutil
import sys
import tracemalloc
import urllib.error

import numpy as np
import pytest

import minigrad as mg
from minigrad import data
from minigrad.data import DataLoader, IDXError, read_idx, write_idx

# ---------------------------------------------------------------- DataLoader


def _arrays(n=10):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.arange(n, dtype=np.int32)
    return x, y


@pytest.mark.parametrize("n, batch, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),
    (8, 4, False, [4, 4]),
    (3, 5, False, [3]),
    (3, 5, True, []),
])  # fmt: skip
def test_loader_batches_and_len(n, batch, drop_last, sizes):
    loader = DataLoader(*_arrays(n), batch_size=batch, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [len(yb) for _, yb in batches] == sizes


def test_loader_yields_float32_and_int64_tensors_on_the_device(device):
    x, y = _arrays()
    loader = DataLoader(x, y, batch_size=4, device=device)
    xb, yb = next(iter(loader))
    assert isinstance(xb, mg.Tensor) and isinstance(yb, mg.Tensor)
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    assert xb.device == device and yb.device == device
    assert not xb.requires_grad
    np.testing.assert_array_equal(xb.numpy(), x[:4])


def test_loader_without_shuffle_keeps_the_order():
    x, y = _arrays()
    ys = np.concatenate([yb.numpy() for _, yb in DataLoader(x, y, batch_size=3)])
    np.testing.assert_array_equal(ys, y)


def test_loader_shuffles_every_sample_once_per_epoch_differently_each_epoch():
    x, y = _arrays(50)
    loader = DataLoader(x, y, batch_size=8, shuffle=True, seed=0)
    epochs = [np.concatenate([yb.numpy() for _, yb in loader]) for _ in range(2)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(50))
        assert order.tolist() != list(range(50))
    assert epochs[0].tolist() != epochs[1].tolist()
    # Rows stay together: x and y are permuted by the same order.
    for xb, yb in loader:
        np.testing.assert_array_equal(xb.numpy()[:, 0], 3 * yb.numpy())


def _order(loader):
    return np.concatenate([yb.numpy() for _, yb in loader]).tolist()


def test_loader_shuffle_is_reproducible_from_seed_or_manual_seed():
    x, y = _arrays(30)
    a = _order(DataLoader(x, y, batch_size=5, shuffle=True, seed=3))
    b = _order(DataLoader(x, y, batch_size=5, shuffle=True, seed=3))
    assert a == b
    mg.manual_seed(11)
    c = _order(DataLoader(x, y, batch_size=5, shuffle=True))
    mg.manual_seed(11)
    d = _order(DataLoader(x, y, batch_size=5, shuffle=True))
    assert c == d


def test_loader_state_dict_resumes_the_shuffling():
    x, y = _arrays(30)
    loader = DataLoader(x, y, batch_size=5, shuffle=True, seed=0)
    _order(loader)
    state = loader.state_dict()
    expected = [_order(loader) for _ in range(2)]
    resumed = DataLoader(x, y, batch_size=5, shuffle=True, seed=99)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1 and resumed.seed == 0
    assert [_order(resumed) for _ in range(2)] == expected
    with pytest.raises(ValueError, match="not a DataLoader state"):
        resumed.load_state_dict({"seed": 1})


def test_loader_accepts_tensors_and_a_single_array():
    loader = DataLoader(mg.tensor([[1.0], [2.0], [3.0]]), batch_size=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(2, 1), (1, 1)] and len(batches[0]) == 1


def test_loader_errors():
    x, y = _arrays()
    with pytest.raises(ValueError, match=r"equally long, got lengths \[10, 9\]"):
        DataLoader(x, y[:9])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, batch_size=0)
    with pytest.raises(ValueError, match="at least one array"):
        DataLoader()
    with pytest.raises(TypeError, match="numeric"):
        DataLoader(np.array(["a", "b"]))


@pytest.mark.parametrize(
    "option, value",
    [("batch_size", True), ("batch_size", 2.0), ("batch_size", -1), ("seed", 1.5),
     ("seed", -1), ("seed", "3"), ("shuffle", "yes"), ("drop_last", 2)],
)  # fmt: skip
def test_loader_refuses_bad_options(option, value):
    with pytest.raises((ValueError, TypeError), match=option):
        DataLoader(*_arrays(), **{option: value})


def _pass(loader, batches=None):
    """The labels of the next `batches` batches (all of the epoch when None)."""
    out = []
    for _, yb in loader:
        out.append(yb.numpy().tolist())
        if batches is not None and len(out) == batches:
            break
    return out


@pytest.mark.parametrize(
    "state, message",
    [
        ({"seed": 0, "epoch": -1, "next_batch": 0}, "epoch must be an integer >= 0"),
        ({"seed": 0, "epoch": "7", "next_batch": 0}, "epoch must be an integer >= 0"),
        ({"seed": 0, "epoch": 1.0, "next_batch": 0}, "epoch must be an integer >= 0"),
        ({"seed": 0, "epoch": 1, "next_batch": 0, "rng": {}}, "unexpected key 'rng'"),
        ({"seed": 0, "epoch": 1}, "missing 'next_batch'"),
        ({"seed": -3, "epoch": 1, "next_batch": 0}, "seed must be an integer >= 0"),
        ({"seed": 0, "epoch": 1, "next_batch": 6}, "next_batch is 6, but an epoch of this"),
        ([0, 1, 0], "not a DataLoader state"),
    ],
)
def test_loader_refuses_bad_states_and_changes_nothing(state, message):
    loader = DataLoader(*_arrays(30), batch_size=5, shuffle=True, seed=0)
    _pass(loader, batches=2)
    before = loader.state_dict()
    with pytest.raises(ValueError, match=message):
        loader.load_state_dict(state)
    assert loader.state_dict() == before
    assert _pass(loader)[0] != []  # still usable


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("saved_after", [0, 1, 5, 6])  # batches into the third epoch
def test_loader_resumes_mid_epoch_with_the_next_batch(shuffle, saved_after):
    """Saved inside the loop after k batches of epoch 3, a new loader gives batch k+1 of
    the same order, then the same epochs after it, as the loader that never stopped."""
    x, y = _arrays(30)
    full = DataLoader(x, y, batch_size=5, shuffle=shuffle, seed=0)
    expected = [b for _ in range(4) for b in _pass(full)]
    run = DataLoader(x, y, batch_size=5, shuffle=shuffle, seed=0)
    got = _pass(run) + _pass(run)
    batches = iter(run)
    for _ in range(saved_after):
        got.append(next(batches)[1].numpy().tolist())
    state = run.state_dict()  # in the middle of the loop, as a Trainer saves
    resumed = DataLoader(x, y, batch_size=5, shuffle=shuffle, seed=7)
    resumed.load_state_dict(state)
    got += _pass(resumed) + _pass(resumed)
    assert got[: len(expected)] == expected


def test_a_mid_epoch_checkpoint_resumes_the_batch_order(tmp_path):
    x, y = _arrays(30)
    loader = DataLoader(x, y, batch_size=4, shuffle=True, seed=0)
    batches = iter(loader)
    first = [next(batches)[1].numpy().tolist() for _ in range(3)]
    mg.save(tmp_path / "c.npz", loaders=[loader], rng=False)
    rest = [yb.numpy().tolist() for _, yb in batches]
    resumed = DataLoader(x, y, batch_size=4, shuffle=True, seed=5)
    mg.load(tmp_path / "c.npz", loaders=[resumed])
    assert _pass(resumed) == rest
    assert sorted(sum(first + rest, [])) == list(range(30))


def test_a_new_pass_after_a_break_is_a_new_epoch():
    loader = DataLoader(*_arrays(30), batch_size=5, shuffle=True, seed=0)
    _pass(loader, batches=2)
    again = DataLoader(*_arrays(30), batch_size=5, shuffle=True, seed=0)
    _pass(again)
    assert _pass(loader) == _pass(again)  # both in epoch 1 now, from its first batch
    assert loader.epoch == again.epoch == 2


class EveryOther:
    """A sampler: this process's half of the rows, shuffled by (seed, epoch); its state is
    the seed (a stand-in for a DistributedSampler)."""

    def __init__(self, n, rank, seed=0):
        self.n, self.rank, self.seed = n, rank, seed

    def indices(self, epoch):
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return order[self.rank :: 2]

    def __len__(self):
        return len(range(self.rank, self.n, 2))

    def state_dict(self):
        return {"seed": self.seed}

    def check_state_dict(self, state):
        if set(state) != {"seed"} or not isinstance(state["seed"], int):
            raise ValueError(f"EveryOther state must be {{'seed': int}}, got {state!r}")
        return state["seed"]

    def apply_state_dict(self, seed):
        self.seed = seed


def test_a_sampler_decides_the_order_of_each_epoch():
    x, y = _arrays(11)
    ranks = [DataLoader(x, y, batch_size=2, sampler=EveryOther(11, r)) for r in (0, 1)]
    assert [len(r) for r in ranks] == [3, 3] and ranks[0].num_samples == 6
    for epoch in range(2):
        orders = [sum(_pass(r), []) for r in ranks]
        assert sorted(orders[0] + orders[1]) == list(range(11))  # each row once, in one rank
        assert orders[0] == EveryOther(11, 0).indices(epoch).tolist()


def test_a_sampler_state_is_saved_and_checked_with_the_loader():
    x, y = _arrays(10)
    loader = DataLoader(x, y, batch_size=2, sampler=EveryOther(10, 0, seed=4))
    _pass(loader, batches=1)
    state = loader.state_dict()
    assert state == {"seed": loader.seed, "epoch": 0, "next_batch": 1, "sampler": {"seed": 4}}
    resumed = DataLoader(x, y, batch_size=2, sampler=EveryOther(10, 0, seed=9))
    with pytest.raises(ValueError, match="EveryOther state"):
        resumed.load_state_dict({**state, "sampler": {"seed": "4"}})
    assert resumed.sampler.seed == 9 and resumed.next_batch == 0
    with pytest.raises(ValueError, match="missing 'sampler'"):
        resumed.load_state_dict({k: v for k, v in state.items() if k != "sampler"})
    resumed.load_state_dict(state)
    fresh = DataLoader(x, y, batch_size=2, sampler=EveryOther(10, 0, seed=4))
    assert _pass(resumed) == _pass(fresh)[1:]


def test_sampler_errors():
    x, y = _arrays(10)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(x, y, sampler=EveryOther(10, 0), shuffle=True)
    with pytest.raises(TypeError, match="indices"):
        DataLoader(x, y, sampler=[0, 1, 2])

    class Unchecked:
        indices, __len__, state_dict = EveryOther.indices, EveryOther.__len__, dict

    with pytest.raises(TypeError, match="check_state_dict"):
        DataLoader(x, y, sampler=Unchecked())

    class Bad(EveryOther):
        def indices(self, epoch):
            return np.array([0, 99, 1, 2, 3])

    with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
        _pass(DataLoader(x, y, sampler=Bad(10, 0)))


# ---------------------------------------------------------------- split and standardize


def test_train_test_split_partitions_the_rows():
    x, y = _arrays(20)
    x_train, x_test, y_train, y_test = data.train_test_split(x, y, test_size=0.25, seed=1)
    assert len(x_test) == 5 and len(x_train) == 15
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(20))
    np.testing.assert_array_equal(x_train[:, 0], 3 * y_train)
    again = data.train_test_split(x, y, test_size=0.25, seed=1)
    np.testing.assert_array_equal(again[3], y_test)
    _, small_test = data.train_test_split(y, test_size=3, shuffle=False)
    np.testing.assert_array_equal(small_test, [0, 1, 2])
    with pytest.raises(ValueError, match="fraction"):
        data.train_test_split(x, test_size=1.5)
    with pytest.raises(ValueError, match="equally long"):
        data.train_test_split(x, y[:3])


def test_standardizer():
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(5, 3, (100, 2)), np.zeros((100, 1))], axis=1)
    train = train.astype(np.float32)
    scaler = data.Standardizer().fit(train)
    z = scaler.transform(train)
    assert z.dtype == np.float32  # float32 in, float32 out
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), [1, 1, 0], atol=1e-5)  # blank column: centered only
    np.testing.assert_allclose(scaler.inverse_transform(z), train, atol=1e-4)
    restored = data.Standardizer().load_state_dict(scaler.state_dict())
    np.testing.assert_array_equal(restored.transform(train), z)
    a, b = data.standardize(train, train[:10] + 1)
    np.testing.assert_allclose(b, z[:10] + 1 / scaler.std, atol=1e-5)
    with pytest.raises(RuntimeError, match="fit"):
        data.Standardizer().transform(train)


# ---------------------------------------------------------------- digits


def test_load_digits():
    pytest.importorskip("sklearn")
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))


def test_load_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        data.load_digits()


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_standard_one(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def _raw_idx(tmp_path, payload: bytes, name="bad-idx"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    "payload, match",
    [
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), r"truncated: .* \(5,\) .* 5 bytes .* has 2"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "trailing bytes"),
        (b"PK\x03\x04 a zip file", "not an IDX file"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), "unknown IDX data type 0x42"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated header"),
    ],
)
def test_idx_corrupt_files_name_the_file_and_the_reason(tmp_path, payload, match):
    path = _raw_idx(tmp_path, payload)
    with pytest.raises(IDXError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_truncated_gzip(tmp_path):
    good = write_idx(tmp_path / "images.gz", np.arange(5000, dtype=np.uint8).reshape(50, 100))
    cut = _raw_idx(tmp_path, good.read_bytes()[:-40], "cut.gz")
    with pytest.raises(IDXError, match="cut.gz: the gzip stream is corrupt or truncated"):
        read_idx(cut)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")


# ---------------------------------------------------------------- MNIST


def _tiny_mnist(directory, n_train=6, n_test=4, compress=True):
    """Write the four MNIST files with a few random 28x28 images; return their SHA-256s."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    contents = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    digests = {}
    for key, array in contents.items():
        name = data.MNIST_FILES[key][0]
        if not compress:
            name = name[: -len(".gz")]
        path = write_idx(directory / name, array, compress=compress)
        digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return contents, digests


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Tiny MNIST files in tmp_path/source, registered as the files to expect."""
    contents, digests = _tiny_mnist(tmp_path / "source")
    table = {key: (data.MNIST_FILES[key][0], digests[key]) for key in data.MNIST_FILES}
    monkeypatch.setattr(data, "MNIST_FILES", table)
    return tmp_path / "source", contents


def _check_loaded(loaded, contents):
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (6, 784) and x_train.dtype == np.float32
    assert y_train.dtype == np.int64 and x_test.shape == (4, 784)
    np.testing.assert_allclose(x_train, contents["train_images"].reshape(6, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_test, contents["test_labels"])
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0


def test_load_mnist_reads_present_files(tiny_mnist):
    source, contents = tiny_mnist
    _check_loaded(data.load_mnist(source, download=False), contents)


def test_load_mnist_reads_unpacked_files(tmp_path):
    contents, _ = _tiny_mnist(tmp_path, compress=False)
    _check_loaded(data.load_mnist(tmp_path, download=False), contents)


def test_load_mnist_downloads_missing_files_verified_and_atomically(
    tiny_mnist, tmp_path, monkeypatch
):
    source, contents = tiny_mnist
    fetched = []

    def fake_download(url, dest):
        fetched.append(url)
        shutil.copyfile(source / url.rsplit("/", 1)[1], dest)

    monkeypatch.setattr(data, "_download", fake_download)
    root = tmp_path / "new" / "mnist"
    _check_loaded(data.load_mnist(root), contents)
    assert len(fetched) == 4 and all(u.startswith(data.MNIST_MIRRORS[0]) for u in fetched)
    assert sorted(p.name for p in root.iterdir()) == sorted(n for n, _ in data.MNIST_FILES.values())
    data.load_mnist(root)  # present now: no second download
    assert len(fetched) == 4


def test_load_mnist_rejects_a_download_with_the_wrong_digest(tiny_mnist, tmp_path, monkeypatch):
    source, _ = tiny_mnist

    def truncated_download(url, dest):
        dest.write_bytes((source / url.rsplit("/", 1)[1]).read_bytes()[:-10])

    monkeypatch.setattr(data, "_download", truncated_download)
    root = tmp_path / "root"
    with pytest.raises(OSError, match="could not download train-images-idx3-ubyte.gz") as info:
        data.load_mnist(root)
    message = str(info.value)
    assert "does not match the expected" in message
    assert all(m in message for m in data.MNIST_MIRRORS)  # every mirror was tried
    assert list(root.iterdir()) == []  # no partial file left behind


def test_load_mnist_without_network_says_what_to_do(tiny_mnist, tmp_path, monkeypatch):
    def offline(url, dest):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(OSError, match="no route to host(.|\n)*Download it by hand"):
        data.load_mnist(tmp_path / "offline")
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load_mnist(tmp_path / "offline", download=False)


def test_load_mnist_detects_a_corrupt_present_file(tiny_mnist):
    source, _ = tiny_mnist
    path = source / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(
        IDXError, match="t10k-labels-idx1-ubyte.gz: SHA-256 .* corrupt or truncated"
    ):
        data.load_mnist(source, download=False)


def test_load_mnist_checks_images_and_labels_agree(tmp_path):
    _tiny_mnist(tmp_path, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(IDXError, match="4 images but 3 labels"):
        data.load_mnist(tmp_path, download=False)


def test_mnist_table_holds_the_published_digests():
    # The SHA-256 sums of the original archives, as torchvision and TFDS check them.
    assert data.MNIST_FILES["train_images"][1].startswith("440fcabf73cc546f")
    assert data.MNIST_FILES["test_labels"][1].startswith("f7ae60f92e00ec6d")
    assert all(len(sha) == 64 for _, sha in data.MNIST_FILES.values())


def test_gzip_files_are_detected_by_content_not_name(tmp_path):
    payload = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 5]))
    path = _raw_idx(tmp_path, payload, "no-suffix")
    np.testing.assert_array_equal(read_idx(path), [4, 5])


def test_idx_sizes_whose_product_overflows_int64_are_refused(tmp_path):
    """(2**16,)*4 uint8 is 2**64 bytes: np.prod wraps that around to 0 in int64."""
    header = bytes([0, 0, 8, 4]) + np.array([2**16] * 4, dtype=">u4").tobytes()
    path = _raw_idx(tmp_path, header, "huge-idx")
    with pytest.raises(IDXError, match=r"18446744073709551616 bytes, more than max_bytes"):
        read_idx(path)


def _peak_memory(call):
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_gzip_bomb_under_a_plain_name_is_refused_without_unpacking_it(tmp_path):
    """10 images by their header, 64 MB once unpacked, 64 KB on disk, under the name of an
    unpacked MNIST file: no more than the header's 7840 bytes are ever unpacked."""
    _tiny_mnist(tmp_path, compress=False)
    header = bytes([0, 0, 8, 3]) + np.array([10, 28, 28], dtype=">u4").tobytes()
    bomb = gzip.compress(header + bytes(64 << 20), compresslevel=9)
    assert len(bomb) < 1 << 20
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bomb)
    with pytest.raises(IDXError, match="train-images-idx3-ubyte: unpacks to more than its head"):
        data.load_mnist(tmp_path, download=False)
    peak = _peak_memory(
        lambda: pytest.raises(IDXError, read_idx, tmp_path / "train-images-idx3-ubyte")
    )
    assert peak < 4 << 20


def test_load_mnist_refuses_a_header_larger_than_mnist(tmp_path):
    _tiny_mnist(tmp_path, compress=False)
    header = bytes([0, 0, 8, 3]) + np.array([400_000, 28, 28], dtype=">u4").tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(gzip.compress(header))
    with pytest.raises(IDXError, match="more than max_bytes"):
        data.load_mnist(tmp_path, download=False)


def test_load_mnist_refuses_zero_images(tmp_path):
    _tiny_mnist(tmp_path, n_train=0, compress=False)  # unpacked: no published digest
    with pytest.raises(
        IDXError, match=r"train-images-idx3-ubyte: holds no images \(shape \(0, 28, 28\)\)"
    ):
        data.load_mnist(tmp_path, download=False)


@pytest.mark.parametrize("label", [10, 255])
def test_load_mnist_refuses_labels_that_are_not_digits(tmp_path, label):
    _tiny_mnist(tmp_path, compress=False)
    labels = np.array([3, 1, 4, 1, label, 9], dtype=np.uint8)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, compress=False)
    with pytest.raises(IDXError, match=f"label {label} at index 4 is not a digit 0-9"):
        data.load_mnist(tmp_path, download=False)
