"""Reading a checkpoint safely: a file from anyone, verified before any array is read.

    with _VerifiedFile(path) as file:     # layout, headers, meta.json, checksum: or raises
        file.meta["contents"]             # what the file holds
        file.headers("model")             # {name: dtype and shape}, nothing read yet
        file.array("model.0.weight")      # read only after its header matched the live one

No pickle is ever read, every entry must be a plain number, bool or str array, and reading
is bounded: members must be stored (not compressed) and may not overlap, arrays are hashed
a block at a time, and an array is read only after its header matched the live object's
(its dtype and shape), so a crafted file cannot make a reader use more memory than the
model's and optimizers' own arrays.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError, CorruptCheckpointError, _corrupt
from .format import (
    _KEY,
    _MAX_ENTRIES,
    _PLAIN_KINDS,
    META_KEY,
    _array_header,
    _check_contents,
    _meta_bytes,
    _parse_meta,
)

# A crafted file must not make the reader use more memory than the live objects' own arrays
# need. Entries that are not checked against a live array (meta.json, JSON state) are capped.
_MAX_SMALL_ENTRY = 64 << 20  # bytes of meta.json or of one JSON / non-model state entry
_BLOCK = 1 << 20  # bytes hashed at a time
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"


class _Entry:
    """One .npy member of the zip: its dtype and shape (from its header, checked against
    its size), and where its data starts inside the member."""

    def __init__(self, info: zipfile.ZipInfo, dtype: np.dtype, shape: tuple, data_offset: int):
        self.info, self.dtype, self.shape, self.data_offset = info, dtype, shape, data_offset
        self.nbytes = info.file_size - data_offset


class _VerifiedFile:
    """An open checkpoint that passed every check that needs no live object:

    1. the bytes: a zip (not a pickle, not text), members stored (not compressed), none
       overlapping another or reaching past the end, so no member is read twice and nothing
       unpacks to more than the file holds (no zip bomb);
    2. every member: a .npy of plain numbers or text, exactly as long as its header says;
    3. meta.json: our format and version, every field of the right type, every listed key
       present and no other;
    4. the checksum over every array *and* meta.json, computed a block at a time.

    The arrays themselves are read only later, one by one (array(), json(), section()),
    after the caller compared their dtype and shape with the live object's."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint file at {path}")
        self.zip = self._open_zip()
        try:
            self._verify()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self) -> _VerifiedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.zip.close()

    def corrupt(self, why: str) -> CorruptCheckpointError:
        return _corrupt(self.path, why)

    # -- step 1: the container

    def _open_zip(self) -> zipfile.ZipFile:
        with open(self.path, "rb") as f:
            head = f.read(8)
        if not head:
            raise self.corrupt("the file is empty or truncated")
        if head.startswith(_NPY_MAGIC):
            raise self.corrupt(
                "it holds a single .npy array, not a zip of arrays written by mg.save"
            )
        if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2-5
            raise self.corrupt(
                "it holds pickled Python objects, which could run code when opened; "
                "minigrad checkpoints never contain pickles, so it is refused"
            )
        if not head.startswith(_ZIP_MAGIC):
            looks = "text" if all(32 <= b < 127 or b in b"\t\n\r" for b in head) else "data"
            raise self.corrupt(
                f"it is not a zip of arrays written by mg.save: it starts with {head!r}, which "
                f"looks like {looks}"
            )
        try:
            return zipfile.ZipFile(self.path)
        except Exception as exc:  # BadZipFile, OSError, or whatever a damaged directory raises
            raise self.corrupt(
                f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
            ) from None

    def _check_layout(self) -> None:
        """Stored members that neither overlap nor reach past the end of the file."""
        infos = self.zip.infolist()
        if len(infos) > _MAX_ENTRIES:
            raise self.corrupt(
                f"it has {len(infos)} members; a checkpoint has at most {_MAX_ENTRIES}"
            )
        size = self.path.stat().st_size
        spans = []
        with open(self.path, "rb") as f:
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    # mg.save stores; a compressed member could unpack to any size.
                    raise self.corrupt(
                        f"member {info.filename!r} is compressed; mg.save never does"
                    )
                if info.flag_bits & 0x1:
                    raise self.corrupt(f"member {info.filename!r} is encrypted")
                if info.compress_size != info.file_size:
                    raise self.corrupt(f"member {info.filename!r} declares two different sizes")
                f.seek(info.header_offset)
                local = f.read(30)  # the local file header, before the name and extra field
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    raise self.corrupt(f"member {info.filename!r} has no local header")
                name_length = int.from_bytes(local[26:28], "little")
                extra_length = int.from_bytes(local[28:30], "little")
                start = info.header_offset
                end = start + 30 + name_length + extra_length + info.compress_size
                if end > size:
                    raise self.corrupt(
                        f"member {info.filename!r} reaches past the end of the file "
                        f"({end} > {size} bytes): truncated or crafted"
                    )
                spans.append((start, end, info.filename))
        spans.sort()
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            if start < end:
                # A zip whose members share bytes reads the same bytes many times: a few
                # megabytes could unpack to gigabytes. np.savez never writes one.
                raise self.corrupt(f"members {first!r} and {second!r} overlap")

    # -- step 2: every member's header

    def _read_entries(self) -> dict[str, _Entry]:
        names = self.zip.namelist()
        if f"{META_KEY}.npy" not in names:
            listed = ", ".join(sorted(names)[:5])
            raise self.corrupt(f"it has no {META_KEY!r} entry (it holds: {listed or 'nothing'})")
        entries = {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise self.corrupt(f"member {info.filename!r} is not a .npy array")
            key = info.filename[: -len(".npy")]
            if key in entries:
                raise self.corrupt(f"the entry {key!r} is there twice")
            entries[key] = self._read_header(key, info)
        return entries

    def _read_header(self, key: str, info: zipfile.ZipInfo) -> _Entry:
        """An entry's .npy header only: no Python objects, C order, and exactly as many
        bytes as its dtype and shape need. (So a forged header cannot make anyone allocate
        more than the member holds.)"""
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise self.corrupt(
                    f"{key!r} is a .npy file of version {version}; np.savez writes 1.0"
                )
            data_offset = f.tell()
        if dtype.hasobject:
            raise self.corrupt(f"{key!r} holds Python objects (a pickled array), refused")
        if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype:
            raise self.corrupt(f"{key!r} has dtype {dtype}; entries must be numbers, bools or text")
        if fortran_order:
            raise self.corrupt(f"{key!r} is stored in Fortran order; mg.save writes C order")
        needed = math.prod(shape) * dtype.itemsize
        if info.file_size - data_offset != needed:
            raise self.corrupt(
                f"{key!r}: its header says {dtype} of shape {shape} ({needed} bytes), but the "
                f"entry holds {info.file_size - data_offset} bytes"
            )
        return _Entry(info, dtype, tuple(shape), data_offset)

    # -- steps 3 and 4: meta.json and the checksum

    def _verify(self) -> None:
        try:
            self._check_layout()
            self.entries = self._read_entries()
            self.meta = _parse_meta(self.path, self._meta_text())
            self.keys = sorted(set(self.entries) - {META_KEY})
            listed = set(self.meta["keys"])
            missing = sorted(listed - set(self.keys))
            if missing:
                raise self.corrupt(f"the entry {missing[0]!r} listed in {META_KEY} is missing")
            unknown = sorted(set(self.keys) - listed)
            if unknown:
                raise CheckpointError(
                    f"{self.path}: unknown key {unknown[0]!r}: it is not listed in {META_KEY}"
                )
            checksum = self._checksum()
        except CheckpointError:
            raise
        except Exception as exc:  # BadZipFile (bad CRC), EOFError, or a mangled .npy header
            raise self.corrupt(
                f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
            ) from None
        if checksum != self.meta["checksum"]:
            raise self.corrupt(
                "the checksum over its arrays and meta.json does not match the one in meta.json: "
                "the file was damaged or edited after it was written"
            )
        for key in self.keys:
            if _KEY.match(key) is None:
                raise CheckpointError(
                    f"{self.path}: unknown key {key!r}: keys are model.<name>, optim.<k>.<key>, "
                    "sched.<k>.<key>, trainer.<key>, loader.<k>.<key> and rng.minigrad"
                )
        for key in self.meta["json_keys"]:
            entry = self.entries.get(key)
            if entry is None or entry.dtype.kind != "U" or entry.shape != ():
                raise CheckpointError(
                    f"{self.path}: {key!r} is listed as JSON but is not a 0-d str array"
                )
        _check_contents(self.path, self.meta["contents"], self.keys)

    def _meta_text(self) -> str:
        entry = self.entries[META_KEY]
        if entry.dtype.kind != "U" or entry.shape != ():
            raise self.corrupt(
                f"{META_KEY!r} must be a 0-d str array of JSON, got {entry.dtype} {entry.shape}"
            )
        return str(self.small_array(META_KEY))

    def _checksum(self) -> str:
        """The checksum as _checksum() computes it at save time, from the file a block at a
        time (the data of a C-order .npy member is exactly array.tobytes())."""
        digest = hashlib.sha256()
        for key in self.keys:
            entry = self.entries[key]
            digest.update(_array_header(key, entry.dtype, entry.shape, entry.nbytes))
            with self.zip.open(entry.info) as f:
                f.read(entry.data_offset)
                while block := f.read(_BLOCK):  # reading to the end checks the zip's CRC
                    digest.update(block)
        digest.update(_meta_bytes(self.meta))
        return "sha256:" + digest.hexdigest()

    # -- reading arrays, after their headers were checked

    def _read(self, key: str, entry: _Entry, capped: bool = True) -> np.ndarray:
        limit = _MAX_SMALL_ENTRY
        if capped and entry.nbytes > limit:
            raise self.corrupt(
                f"{key!r} holds {entry.nbytes} bytes; a state entry that is not one of the "
                f"model's or optimizers' arrays holds at most {limit}"
            )
        array = np.empty(entry.shape, entry.dtype)
        try:
            with self.zip.open(entry.info) as f:
                f.read(entry.data_offset)
                if array.size:
                    got = f.readinto(array.reshape(-1).view(np.uint8))
                    if got != entry.nbytes:
                        raise EOFError(f"{got} of {entry.nbytes} bytes")
        except Exception as exc:  # the file changed since it was verified, or a bad read
            raise self.corrupt(f"{key!r} could not be read ({type(exc).__name__}: {exc})") from None
        return array

    def array(self, key: str) -> np.ndarray:
        """An entry whose dtype and shape the caller checked against a live array."""
        return self._read(key, self.entries[key], capped=False)

    def small_array(self, key: str) -> np.ndarray:
        """An entry not checked against a live array: at most _MAX_SMALL_ENTRY bytes."""
        return self._read(key, self.entries[key])

    def json(self, key: str):
        """A JSON entry, decoded; malformed JSON (too deep, huge numbers) is corrupt."""
        text = str(self.small_array(key))
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise self.corrupt(
                f"{key!r} does not hold valid JSON ({type(exc).__name__}: {exc})"
            ) from None

    def section(self, prefix: str) -> dict:
        """The entries under "<prefix>.", with the prefix cut off and JSON decoded."""
        cut, json_keys = len(prefix) + 1, set(self.meta["json_keys"])
        return {
            key[cut:]: self.json(key) if key in json_keys else self.small_array(key)
            for key in self.keys
            if key.startswith(prefix + ".")
        }

    def headers(self, prefix: str) -> dict[str, _Entry]:
        cut = len(prefix) + 1
        return {key[cut:]: self.entries[key] for key in self.keys if key.startswith(prefix + ".")}
