"""PyTorch's numbers, recorded once, so that every machine checks against them.

`make test` never needs PyTorch. Instead `make_golden.py` (beside this file) runs each
`gen_<family>.py` where PyTorch is installed and writes `<family>.npz`: inputs, outputs and
gradients as PyTorch computed them, plus which versions made them. Tests read them here:

    from golden import load
    cases = load("ops")                  # {name: array}, e.g. cases["exp/x"], cases["exp/out"]
    cases.meta["torch"]                  # the PyTorch version that made the file

A missing file fails the test that asks for it (it never skips): the files are in the repo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


class Golden(dict):
    """{name: array} read from one golden file, with `.meta` (versions, date) and helpers."""

    meta: dict

    def cases(self, prefix: str = "") -> list[str]:
        """The case names (the part before the first '/') that start with `prefix`."""
        return sorted({key.split("/", 1)[0] for key in self if key.startswith(prefix)})

    def case(self, name: str) -> dict:
        """{field: array} of one case: cases["exp/x"] is case("exp")["x"]."""
        start = name + "/"
        found = {key[len(start) :]: value for key, value in self.items() if key.startswith(start)}
        if not found:
            raise KeyError(f"no case {name!r} in this golden file (cases: {self.cases()[:10]}...)")
        return found


_cache: dict[str, Golden] = {}


def load(family: str) -> Golden:
    """The golden file `<family>.npz` as a Golden dict (read once per test session)."""
    if family not in _cache:
        path = HERE / f"{family}.npz"
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: regenerate it where PyTorch is installed with "
                f"`python tests/golden/make_golden.py {family}`"
            )
        with np.load(path, allow_pickle=False) as npz:
            golden = Golden({key: npz[key] for key in npz.files if key != "__meta__"})
            golden.meta = json.loads(str(npz["__meta__"]))
        _cache[family] = golden
    return _cache[family]
