"""Regenerate the golden files from PyTorch: `python tests/golden/make_golden.py [family ...]`.

Run it where PyTorch is installed (minigrad's tests never need it). Each `gen_<family>.py`
beside this script defines `generate() -> {name: numpy array}`; this script runs the ones
named (all when none is), and writes `<family>.npz` with a `__meta__` entry saying which
PyTorch and NumPy made it. Names are "<case>/<field>", e.g. "exp/x", "exp/out", "exp/grad.x".
Everything is computed in float64 unless the case is about another dtype.
"""

from __future__ import annotations

import datetime
import importlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def families() -> list[str]:
    return sorted(p.stem[len("gen_") :] for p in HERE.glob("gen_*.py"))


def write(family: str) -> Path:
    import torch

    sys.path.insert(0, str(HERE))
    module = importlib.import_module(f"gen_{family}")
    torch.manual_seed(0)
    arrays = module.generate()
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise TypeError(f"{family}: {name!r} is not a plain numpy array")
    meta = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "made": datetime.date.today().isoformat(),
        "by": f"tests/golden/gen_{family}.py",
    }
    path = HERE / f"{family}.npz"
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)
    return path


def main(argv: list[str]) -> None:
    names = argv or families()
    unknown = sorted(set(names) - set(families()))
    if unknown:
        raise SystemExit(f"no generator for {unknown}; families: {families()}")
    for family in names:
        path = write(family)
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
