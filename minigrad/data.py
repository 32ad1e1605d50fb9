"""Batching and datasets: DataLoader, train_test_split, Standardizer, load_digits, load_mnist.

    X, y = load_digits()                                   # (1797, 64) float32, (1797,) int64
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    scaler = Standardizer().fit(X_train)                   # statistics of the training set only
    loader = DataLoader(scaler.transform(X_train), y_train, batch_size=64, shuffle=True,
                        seed=0, device="cpu")
    for xb, yb in loader:                                   # tensors on the requested device
        ...

Arrays stay NumPy arrays on the host until a batch is cut; each batch is then moved to the
device once. Float data becomes float32, integer labels int64 (the framework's defaults).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import shutil
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import backend
from .checks import check_count, check_flag, check_state_keys
from .random import generator
from .tensor import Tensor

__all__ = [
    "DataLoader",
    "train_test_split",
    "Standardizer",
    "standardize",
    "load_digits",
    "load_mnist",
    "read_idx",
    "write_idx",
    "IDXError",
    "MNIST_FILES",
    "MNIST_MIRRORS",
]


def _host_array(array, what: str) -> np.ndarray:
    """A NumPy array in the framework's default dtype: float -> float32, integer -> int64."""
    if isinstance(array, Tensor):
        array = array.data
    array = backend.to_numpy(array)
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=False)
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind == "b":
        return array
    raise TypeError(f"{what} has dtype {array.dtype}; DataLoader takes numeric arrays")


# ---------------------------------------------------------------- DataLoader


class DataLoader:
    """Batches of equally long arrays, as tuples of tensors on `device`.

        loader = DataLoader(X, y, batch_size=64, shuffle=True, seed=0, device="gpu")
        len(loader)              # number of batches: ceil(N / 64), or floor with drop_last
        for xb, yb in loader:    # xb: (64, ...) float32 tensor on the GPU, yb: (64,) int64
            ...

    The order of epoch e is a function of (seed, e) alone: in order, or with shuffle=True
    the permutation drawn by np.random.default_rng([seed, e]). With `seed=None` the seed is
    drawn from `minigrad.random`, so `mg.manual_seed` still makes the order reproducible.
    So the state is three numbers: {"seed", "epoch" (epochs finished, = the one under way),
    "next_batch" (how many batches of that epoch were given out)}: a checkpoint saved in
    the middle of an epoch resumes with the very next batch of the very same order.

    sampler: for data-parallel training (each process its own share of the data), any
    object with indices(epoch) -> 1-D int array (the sample order of that epoch,
    deterministic in epoch) and __len__; then shuffle must be False (the sampler decides
    the order). A sampler with state_dict() also has check_state_dict()/apply_state_dict();
    its state is saved and checked with the loader's.
    """

    def __init__(
        self,
        *arrays,
        batch_size: int = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        device: str | None = None,
        sampler=None,
    ):
        if not arrays:
            raise ValueError("DataLoader needs at least one array, e.g. DataLoader(X, y, ...)")
        self.arrays = [_host_array(a, f"array {i}") for i, a in enumerate(arrays)]
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"DataLoader: the arrays must be equally long, got lengths {lengths}")
        self.batch_size = check_count("DataLoader: batch_size", batch_size, low=1)
        self.shuffle = check_flag("DataLoader: shuffle", shuffle)
        self.drop_last = check_flag("DataLoader: drop_last", drop_last)
        if sampler is not None:
            _check_sampler(sampler)
            if self.shuffle:
                raise ValueError(
                    "DataLoader: sampler option is mutually exclusive with shuffle: the sampler "
                    "decides the order (shuffle inside the sampler, and pass shuffle=False)"
                )
        self.sampler = sampler
        self.device = backend.resolve_device(device)
        if seed is None:
            seed = int(generator().integers(2**63))
        self.seed = check_count("DataLoader: seed", seed)
        self.epoch = 0  # epochs finished: the number of the epoch under way or next
        self.next_batch = 0  # batches of that epoch given out so far
        self._iterating = False  # an iteration is under way (or was abandoned midway)

    @property
    def num_samples(self) -> int:
        """Samples per epoch: all rows, or this process's share when there is a sampler."""
        return len(self.sampler) if self.sampler is not None else len(self.arrays[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        if self._iterating:
            # The last pass stopped midway (a break): as in PyTorch, a new pass is a new epoch.
            self.epoch, self.next_batch = self.epoch + 1, 0
        self._iterating = True
        order = self._order(self.epoch)
        for b in range(self.next_batch, len(self)):
            start = b * self.batch_size
            if order is None:
                index = slice(start, start + self.batch_size)  # a view: no copy on the host
            else:
                index = order[start : start + self.batch_size]
            batch = tuple(Tensor(backend.to_device(a[index], self.device)) for a in self.arrays)
            self.next_batch = b + 1  # counted before the yield: a save inside the loop body
            yield batch  #             resumes with the batch after this one
        self.epoch, self.next_batch, self._iterating = self.epoch + 1, 0, False

    def _order(self, epoch: int) -> np.ndarray | None:
        """The sample indices of `epoch`, or None for 0, 1, 2, ... (cut as views)."""
        if self.sampler is not None:
            return _sampler_indices(self.sampler, epoch, len(self.arrays[0]))
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        return None

    # -- state: {"seed", "epoch", "next_batch"} (+ "sampler")

    def state_dict(self) -> dict:
        """Where the loader is, as plain Python values (JSON-friendly)."""
        epoch, next_batch = self.epoch, self.next_batch
        if next_batch >= len(self):  # the last batch is out: resume with the next epoch
            epoch, next_batch = epoch + 1, 0
        state = {"seed": self.seed, "epoch": epoch, "next_batch": next_batch}
        if hasattr(self.sampler, "state_dict"):
            state["sampler"] = self.sampler.state_dict()
        return state

    def check_state_dict(self, state) -> tuple:
        """Check a state from state_dict() against this loader; returns it prepared for
        apply_state_dict. Raises ValueError naming the problem; changes nothing."""
        if not isinstance(state, Mapping):
            raise ValueError(f"not a DataLoader state: a dict, got {type(state).__name__}")
        keys = {"seed", "epoch", "next_batch"}
        if hasattr(self.sampler, "state_dict"):
            keys.add("sampler")
        try:
            check_state_keys("the DataLoader", keys, state)
        except ValueError as exc:
            raise ValueError(f"not a DataLoader state: {exc}") from None
        seed = check_count("the DataLoader state's seed", state["seed"])
        epoch = check_count("the DataLoader state's epoch", state["epoch"])
        next_batch = check_count("the DataLoader state's next_batch", state["next_batch"])
        if next_batch >= max(len(self), 1):
            raise ValueError(
                f"the DataLoader state's next_batch is {next_batch}, but an epoch of this loader "
                f"has {len(self)} batches (was it saved with another batch_size or data?)"
            )
        sampler = self.sampler.check_state_dict(state["sampler"]) if "sampler" in keys else None
        return seed, epoch, next_batch, sampler

    def apply_state_dict(self, prepared: tuple) -> None:
        """Take a state from check_state_dict (cannot fail): the next pass continues there."""
        self.seed, self.epoch, self.next_batch, sampler = prepared
        self._iterating = False
        if hasattr(self.sampler, "state_dict"):
            self.sampler.apply_state_dict(sampler)

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the loader that saved `state` was (check, then apply)."""
        self.apply_state_dict(self.check_state_dict(state))

    def __repr__(self) -> str:
        shapes = ", ".join(str(a.shape) for a in self.arrays)
        return (
            f"DataLoader({shapes}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, device='{self.device}', batches={len(self)})"
        )


def _check_sampler(sampler) -> None:
    if not callable(getattr(sampler, "indices", None)) or not hasattr(sampler, "__len__"):
        raise TypeError(
            f"DataLoader: sampler must have indices(epoch) -> int array and __len__, got a "
            f"{type(sampler).__name__}"
        )
    if hasattr(sampler, "state_dict") and not (
        hasattr(sampler, "check_state_dict") and hasattr(sampler, "apply_state_dict")
    ):
        raise TypeError(
            f"DataLoader: the sampler {type(sampler).__name__} has state_dict() but not "
            "check_state_dict()/apply_state_dict(), so its state could not be checked on load"
        )


def _sampler_indices(sampler, epoch: int, num_rows: int) -> np.ndarray:
    """sampler.indices(epoch), checked: 1-D integers in [0, num_rows), len(sampler) of them."""
    indices = np.asarray(sampler.indices(epoch))
    name = type(sampler).__name__
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise TypeError(
            f"{name}.indices({epoch}) must return a 1-D integer array, got {indices.dtype} of "
            f"shape {indices.shape}"
        )
    if len(indices) != len(sampler):
        raise ValueError(
            f"{name}.indices({epoch}) returned {len(indices)} indices, but len() says "
            f"{len(sampler)}"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= num_rows):
        raise ValueError(
            f"{name}.indices({epoch}) returned indices outside [0, {num_rows}): "
            f"{indices.min()}..{indices.max()}"
        )
    return indices.astype(np.int64, copy=False)


# ---------------------------------------------------------------- splitting and scaling


def train_test_split(*arrays, test_size: float | int = 0.2, seed: int = 0, shuffle: bool = True):
    """Split equally long arrays into train and test parts, as scikit-learn does.

    Returns [a_train, a_test, b_train, b_test, ...]. `test_size` is a fraction in (0, 1) or a
    count of samples.

        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    arrays = [a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(
            f"train_test_split: the arrays must be equally long, got {[len(a) for a in arrays]}"
        )
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        n_test = math.ceil(test_size * n)
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} leaves no train or no test samples out of {n}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    test, train = order[:n_test], order[n_test:]
    out = []
    for a in arrays:
        out += [a[train], a[test]]
    return out


class Standardizer:
    """x -> (x - mean) / std per feature, with mean and std learned from the training data.

    Fit on the training set only, then apply the same transform to validation and test
    data (using their own statistics would leak information about them). A feature with
    std 0 (a pixel that is always blank) is only centered.

        scaler = Standardizer().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    """

    def __init__(self, eps: float = 1e-8):
        self.eps = eps
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x) -> Standardizer:
        x = np.asarray(x)
        self.mean = x.mean(axis=0).astype(x.dtype)
        std = x.std(axis=0)
        self.std = np.where(std > self.eps, std, 1.0).astype(x.dtype)
        return self

    def _check(self):
        if self.mean is None:
            raise RuntimeError("Standardizer: call fit(x_train) before transform")

    def transform(self, x) -> np.ndarray:
        self._check()
        return (np.asarray(x) - self.mean) / self.std

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, z) -> np.ndarray:
        self._check()
        return np.asarray(z) * self.std + self.mean

    def state_dict(self) -> dict:
        self._check()
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    def load_state_dict(self, state: dict) -> Standardizer:
        self.mean, self.std = np.asarray(state["mean"]), np.asarray(state["std"])
        return self


def standardize(train, *others):
    """Standardize `train` with its own statistics and `others` with the same ones.

    X_train, X_val, X_test = standardize(X_train, X_val, X_test)
    """
    scaler = Standardizer().fit(train)
    return tuple(scaler.transform(a) for a in (train, *others))


# ---------------------------------------------------------------- datasets: digits


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 handwritten 8x8 digits that ship inside scikit-learn (nothing is downloaded).

    Returns X: (1797, 64) float32 in [0, 1] (pixel intensities 0..16 divided by 16) and
    y: (1797,) int64 labels 0..9.
    """
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            "load_digits needs scikit-learn: pip install scikit-learn "
            "(or pip install 'minigrad[examples]')"
        ) from exc
    digits = datasets.load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


# ---------------------------------------------------------------- datasets: MNIST (IDX files)

# The standard MNIST archives, with their sizes and SHA-256 digests (the same files on every
# mirror; these are the digests torchvision and TensorFlow Datasets check against).
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train_labels": (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test_images": (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


class IDXError(ValueError):
    """An IDX file is corrupt, truncated or not an IDX file; the message names the file."""


# IDX type byte -> big-endian NumPy dtype (from the format's description on LeCun's page).
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MNIST_MAX_BYTES = 256 << 20


def read_idx(path, max_bytes: int = 1 << 32) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into a NumPy array.

    The format: 2 zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions n,
    n big-endian int32 sizes, then the values in C order. Raises IDXError naming the file
    and what is wrong with it (bad header, truncated data, broken gzip stream).

    The header says how many bytes follow; no more than that is ever unpacked, and a header
    that asks for more than `max_bytes` (4 GiB by default) is refused before reading on. So
    a small gzip "bomb" that unpacks to gigabytes costs nothing, whatever its name.
    """
    path = Path(path)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {path} does not exist") from None
    with file:
        compressed = file.read(2) == _GZIP_MAGIC  # by content: a name can say anything
        file.seek(0)
        stream = gzip.GzipFile(fileobj=file, mode="rb") if compressed else file
        try:
            return _read_idx_stream(path, stream, compressed, max_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise
            raise IDXError(
                f"{path}: the gzip stream is corrupt or truncated ({exc}); delete the file and "
                "download it again"
            ) from None


def _read_idx_stream(path: Path, stream, compressed: bool, max_bytes: int) -> np.ndarray:
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise IDXError(f"{path}: not an IDX file (it must start with two zero bytes, got {head!r})")
    type_code, ndim = head[2], head[3]
    if type_code not in _IDX_TYPES:
        raise IDXError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXError(
            f"{path}: truncated header ({4 + len(sizes)} bytes, {ndim} dimensions need "
            f"{4 + 4 * ndim})"
        )
    shape = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # a Python int: it cannot overflow
    if expected > max_bytes:
        raise IDXError(
            f"{path}: the header says shape {shape} of {dtype.name} = {expected} bytes, more "
            f"than max_bytes={max_bytes}: corrupt or crafted (pass a larger max_bytes to "
            "read_idx if the file is really that large)"
        )
    raw = stream.read(expected + 1)  # one byte more tells trailing bytes apart
    got = len(raw)
    if got != expected:
        if got < expected:
            why = "truncated"
        elif compressed:
            why = "unpacks to more than its header says (trailing bytes, or a gzip bomb)"
        else:
            why = "has trailing bytes"
        more = "" if got < expected else " or more"
        raise IDXError(
            f"{path}: {why}: the header says shape {shape} of {dtype.name} = {expected} bytes "
            f"of data, the file has {got}{more}"
        )
    if not compressed and stream.read(1):
        raise IDXError(f"{path}: has trailing bytes after the {expected} bytes of data")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file (gzip-compressed when the name ends in .gz).

    The inverse of read_idx, used by the tests and the synthetic demo data.
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_IDX_TYPES[code], copy=False).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Fetch `url` into `dest` (the caller verifies it). Tests replace this function."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


def _fetch(name: str, sha256: str, root: Path) -> Path:
    """Download `name` into `root`, verified, via a temporary file and an atomic rename."""
    errors = []
    for mirror in MNIST_MIRRORS:
        url = mirror + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=root)
        os.close(fd)
        tmp = Path(tmp)
        try:
            _download(url, tmp)
            got = _sha256(tmp)
            if got != sha256:
                errors.append(f"{url}: SHA-256 {got} does not match the expected {sha256}")
                continue
            os.replace(tmp, root / name)  # atomic: a reader never sees half a file
            return root / name
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise OSError(
        f"could not download {name} into {root}:\n  "
        + "\n  ".join(errors)
        + f"\nDownload it by hand from one of {', '.join(MNIST_MIRRORS)} into {root}."
    )


def _mnist_file(key: str, root: Path, download: bool) -> Path:
    """The path of one MNIST file: the .gz (verified) or an uncompressed copy, else downloaded."""
    name, sha256 = MNIST_FILES[key]
    gz, plain = root / name, root / name[: -len(".gz")]
    if gz.exists():
        got = _sha256(gz)
        if got != sha256:
            raise IDXError(
                f"{gz}: SHA-256 {got} does not match the expected {sha256}: the file is corrupt "
                "or truncated (an interrupted download?); delete it and run again"
            )
        return gz
    if plain.exists():
        return plain  # unpacked by the user: no published digest, read_idx checks its structure
    if not download:
        raise FileNotFoundError(
            f"MNIST file {name} is not in {root}; pass download=True or put it there "
            f"(from {MNIST_MIRRORS[0]}{name})"
        )
    root.mkdir(parents=True, exist_ok=True)
    return _fetch(name, sha256, root)


def load_mnist(root="data/mnist", download: bool = True):
    """MNIST: 60,000 training and 10,000 test images of handwritten digits, 28x28 pixels.

    Reads the four standard IDX files from `root` (train-images-idx3-ubyte.gz, ...; gzip or
    already unpacked). Missing files are downloaded into `root` when `download` is True; a
    downloaded or present .gz file is checked against its published SHA-256 before use.

    Returns ((X_train, y_train), (X_test, y_test)): X float32 of shape (N, 784) scaled to
    [0, 1], y int64 of shape (N,).
    """
    root = Path(root)
    files = {key: _mnist_file(key, root, download) for key in MNIST_FILES}
    # MNIST's largest file is 47 MB unpacked: a file that says it is far larger is not MNIST.
    parts = {key: read_idx(path, max_bytes=_MNIST_MAX_BYTES) for key, path in files.items()}
    out = []
    for split in ("train", "test"):
        images, labels = parts[f"{split}_images"], parts[f"{split}_labels"]
        images_file, labels_file = files[f"{split}_images"], files[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise IDXError(
                f"{images_file}: expected images (N, rows, cols) and labels (N,), got "
                f"{images.shape} and {labels.shape}"
            )
        if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
            raise IDXError(f"{images_file}: holds no images (shape {images.shape})")
        if len(images) != len(labels):
            raise IDXError(
                f"{images_file}: {len(images)} images but {len(labels)} labels in the "
                f"{split} labels file"
            )
        outside = (labels < 0) | (labels > 9)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise IDXError(
                f"{labels_file}: label {int(labels[first])} at index {first} is not a digit "
                f"0-9 ({int(outside.sum())} such labels): not an MNIST labels file"
            )
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
        out.append((x, labels.astype(np.int64)))
    return tuple(out)
