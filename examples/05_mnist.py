"""05 - MNIST: 70,000 handwritten digits, 28x28 pixels, read from the standard IDX files.

    x (N, 784) -> Linear(784, 256) -> ReLU -> Linear(256, 256) -> ReLU -> Linear(256, 10)

`data.load_mnist(root)` reads train-images-idx3-ubyte.gz and its three siblings from `root`,
downloading any that are missing and checking each archive's SHA-256 before use (a
truncated download is caught there, not as a strange crash later). The IDX format is tiny:
a 4-byte magic number (0, 0, type, number of dimensions), the sizes as big-endian int32,
then the raw bytes; see `minigrad.data.read_idx`.

This example trains with `Trainer.fit`, the Trainer's built-in loop (04 writes the loop out).
Three epochs reach about 97-98% test accuracy, in well under a minute on a laptop CPU.

    python examples/05_mnist.py                       # downloads into data/mnist on first use
    python examples/05_mnist.py --root ~/datasets/mnist --device gpu
    python examples/05_mnist.py --synthetic           # no MNIST at hand: a generated stand-in

Without the files and without a network, it says how to get them and stops (exit status 0:
nothing is wrong with the program). --synthetic, and --quick when the files are missing,
write a small generated IDX data set instead, clearly labeled: it runs the same reader and
training loop, but its accuracy says nothing about MNIST.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad import data, nn, optim
from minigrad.nn import functional as F


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/mnist", help="folder of the IDX files")
    parser.add_argument("--no-download", action="store_true", help="never use the network")
    parser.add_argument("--synthetic", action="store_true", help="generated stand-in data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 epoch on a subset, offline")
    return parser.parse_args(argv)


def _mnist_present(root: Path) -> bool:
    return all(
        (root / name).exists() or (root / name[: -len(".gz")]).exists()
        for name, _ in data.MNIST_FILES.values()
    )


def write_synthetic_idx(root: Path, n_train: int = 2000, n_test: int = 500, seed: int = 0):
    """Write the four MNIST file names with generated 28x28 images (uncompressed IDX).

    Each class is a fixed random blob pattern; a sample is its pattern shifted by up to two
    pixels plus noise. Uncompressed, because the published SHA-256 sums are for the real .gz
    archives (load_mnist checks those) and these files are not them.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.random((10, 7, 7))
    patterns = np.kron(coarse, np.ones((4, 4)))  # (10, 28, 28): blocky "digits"

    def make(n):
        labels = rng.integers(0, 10, n)
        shifts = rng.integers(-2, 3, (n, 2))
        images = np.stack(
            [np.roll(patterns[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)]
        )
        images = np.clip(images + 0.35 * rng.standard_normal(images.shape), 0, 1)
        return (255 * images).astype(np.uint8), labels.astype(np.uint8)

    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = make(n)
        for kind, array in (("images", images), ("labels", labels)):
            name = data.MNIST_FILES[f"{split}_{kind}"][0][: -len(".gz")]
            data.write_idx(root / name, array)
    return root


def how_to_get_mnist(root: Path, reason: str) -> None:
    names = "\n".join(f"    {data.MNIST_MIRRORS[0]}{name}" for name, _ in data.MNIST_FILES.values())
    print(
        f"MNIST is not available: {reason}\n\n"
        f"To run this example on MNIST, put the four files into {root}/ (or pass --root):\n"
        f"{names}\n"
        f"(run it once with network access and it downloads them, checking their SHA-256).\n"
        f"To see the pipeline work without them: python {sys.argv[0]} --synthetic"
    )


def load(args):
    """((X_train, y_train), (X_test, y_test), label), or None when MNIST cannot be had."""
    root = Path(args.root)
    if args.synthetic or (args.quick and not _mnist_present(root)):
        with tempfile.TemporaryDirectory(prefix="minigrad-synthetic-mnist-") as tmp:
            write_synthetic_idx(Path(tmp), n_train=600 if args.quick else 2000, n_test=200)
            train, test = data.load_mnist(tmp, download=False)  # read into memory
        return train, test, "SYNTHETIC stand-in data (not MNIST)"
    try:
        train, test = data.load_mnist(root, download=not (args.no_download or args.quick))
    except (OSError, data.IDXError) as exc:  # no network, a refused download, a bad file
        how_to_get_mnist(root, "\n  ".join(str(exc).splitlines()[:3]))
        return None
    if args.quick:  # a subset: this is a smoke test
        train, test = (a[:2000] for a in train), (a[:500] for a in test)
        train, test = tuple(train), tuple(test)
    return train, test, f"MNIST from {root}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.epochs = 1
    loaded = load(args)
    if loaded is None:
        return 0
    (X_train, y_train), (X_test, y_test), label = loaded
    print(
        f"{label}: {len(X_train)} training and {len(X_test)} test images "
        f"of {X_train.shape[1]} pixels"
    )

    mg.manual_seed(args.seed)
    loader = data.DataLoader(
        X_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed,
        device=args.device,
    )  # fmt: skip
    X_test_t, y_test_t = (
        mg.tensor(X_test, device=args.device),
        mg.tensor(y_test, device=args.device),
    )
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 10),
    ).to(args.device)  # fmt: skip
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=args.lr)
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=args.lr, weight_decay=0)
    trainer = optim.Trainer(opt_w, opt_b)

    # The test set doubles as the per-epoch monitor here, which is fine for watching
    # training; choosing hyperparameters by it would need a separate validation split (04).
    def report(record):
        print(
            f"epoch {record['epoch']}/{args.epochs}  train loss {record['train_loss']:.4f}  "
            f"test acc {100 * record['test_acc']:.2f}%"
        )

    start = time.perf_counter()
    trainer.fit(
        model,
        loader,
        epochs=args.epochs,
        loss_fn=F.cross_entropy,
        validate=lambda: {"test_acc": F.accuracy(model(X_test_t), y_test_t)},
        on_epoch_end=report,
    )
    print(f"trained {args.epochs} epoch(s) in {time.perf_counter() - start:.1f} s on {args.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
