"""04 - An MLP on the handwritten digits, end to end (this is `make demo`).

The 1797 8x8 digit images that ship with scikit-learn (no download), flattened to 64 numbers:

    x (N, 64) -> Linear(64, 256) -> ReLU -> Dropout(0.2) -> Linear(256, 10) -> logits (N, 10)
    loss = cross_entropy(logits, y, label_smoothing=0.1)          y (N,) in 0..9

Label smoothing trains against 0.9 * onehot(y) + 0.1 / 10 instead of onehot(y): the model
is never pushed to infinitely confident logits, which on a data set this small is worth
about one point of test accuracy (97.0% -> 97.9% on average over seeds 0-3). The training loss
then stops near 0.5 (the entropy of the smoothed target), not near 0.

The pieces, in the order a real training script has them:

1. data: load, split into train/validation/test, standardize with the *training* statistics,
   and a DataLoader that shuffles the training set each epoch and puts batches on the device;
2. model: `nn.Sequential`, built after `mg.manual_seed`, so every run starts the same;
3. optimizers: AdamW twice, because weight decay should shrink the weights but not the
   biases (decaying a bias only shifts a unit's threshold towards 0 and buys no
   regularization). Two optimizers over disjoint parameters is minigrad's way of saying
   "parameter groups";
4. the Trainer: `train_step(closure)` runs forward, backward and both optimizers' steps;
   `epoch_avg_loss()` reads the running loss from the device once per epoch;
5. evaluation with the model in eval mode (Dropout off) and under `mg.no_grad()`;
6. a loss/accuracy plot (PNG) and a checkpoint of the model and optimizer state in runs/.

    python examples/04_digits_mlp.py                  # CPU: about 2 s in all, 97.8% test accuracy
    python examples/04_digits_mlp.py --device gpu     # the same on a GPU (needs CuPy); the
                                                      # first GPU run also compiles CuPy kernels
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import minigrad as mg
from minigrad import data, nn, optim
from minigrad.nn import functional as F


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or gpu (default: cpu)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/digits", help="folder for the plot and checkpoint")
    parser.add_argument("--quick", action="store_true", help="2 epochs, for the tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 2
    return args


def make_data(args):
    """Train/validation/test splits (72/8/20 %), standardized by the training statistics."""
    X, y = data.load_digits()
    X_rest, X_test, y_rest, y_test = data.train_test_split(X, y, test_size=0.2, seed=args.seed)
    X_train, X_val, y_train, y_val = data.train_test_split(
        X_rest, y_rest, test_size=0.1, seed=args.seed
    )
    X_train, X_val, X_test = data.standardize(X_train, X_val, X_test)
    loader = data.DataLoader(
        X_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed,
        device=args.device,
    )  # fmt: skip
    # Validation and test sets are small: put them on the device once, whole.
    val = (mg.tensor(X_val, device=args.device), mg.tensor(y_val, device=args.device))
    test = (mg.tensor(X_test, device=args.device), mg.tensor(y_test, device=args.device))
    return loader, val, test


def evaluate(model, X, y) -> float:
    """Accuracy with Dropout off and without building a graph."""
    model.eval()
    with mg.no_grad():
        acc = F.accuracy(model(X), y)
    model.train()
    return acc


def save_checkpoint(path: Path, model, trainer, loader, history: list) -> None:
    """Everything needed to resume, in one file that is safe to open (see mg.load)."""
    extra = {"history": history}
    mg.save(path, model=model, trainer=trainer, loaders=[loader], extra=extra)


def save_plot(path: Path, history: list, test_acc: float) -> None:
    import matplotlib

    matplotlib.use("Agg")  # draw to a file: no window, works without a display
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [r["train_loss"] for r in history], marker="o", ms=3)
    left.set(xlabel="epoch", ylabel="cross-entropy (label smoothing)")
    left.set_title("training loss")
    right.plot(epochs, [100 * r["val_acc"] for r in history], marker="o", ms=3, color="C1")
    right.axhline(100 * test_acc, color="gray", ls="--", label=f"test {100 * test_acc:.1f}%")
    right.set(xlabel="epoch", ylabel="accuracy (%)")
    right.set_title("validation accuracy")
    right.legend(loc="lower right")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("minigrad: MLP on the 8x8 digits (AdamW)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        args.device = mg.backend.normalize_device(args.device)
        if args.device == "gpu":
            mg.backend.cupy_module()  # fails here, with the reason, when there is no GPU
    except (ValueError, mg.DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety, not a requirement
        tqdm = None

    mg.manual_seed(args.seed)
    loader, (X_val, y_val), (X_test, y_test) = make_data(args)
    model = nn.Sequential(
        nn.Linear(64, args.hidden),
        nn.ReLU(),
        nn.Dropout(args.dropout),
        nn.Linear(args.hidden, 10),
    ).to(args.device)

    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=args.lr,
                        weight_decay=args.weight_decay)  # fmt: skip
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=args.lr, weight_decay=0.0)
    trainer = optim.Trainer(opt_w, opt_b)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits, targets, label_smoothing=args.label_smoothing)

    print(
        f"digits: {loader.num_samples} train / {len(y_val)} validation / {len(y_test)} test "
        f"images; model 64-{args.hidden}-10 ({model.num_parameters():,} parameters) on "
        f"{args.device}"
    )
    # One bar over all steps (on a terminal only); the epoch lines are written above it.
    bar = (
        tqdm(total=args.epochs * len(loader), unit="step", leave=False, disable=None)
        if tqdm
        else None
    )
    write = tqdm.write if tqdm else print
    history = []
    train_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for xb, yb in loader:
            trainer.train_step(lambda: loss_fn(model(xb), yb), batch_size=len(yb))  # noqa: B023
            if bar is not None:
                bar.update()
        record = {
            "epoch": epoch,
            "train_loss": trainer.epoch_avg_loss(),
            "val_acc": evaluate(model, X_val, y_val),
        }
        history.append(record)
        write(
            f"epoch {epoch:2d}/{args.epochs}  train loss {record['train_loss']:.4f}  "
            f"val acc {100 * record['val_acc']:5.1f}%"
        )
    if bar is not None:
        bar.close()
    train_time = time.perf_counter() - train_start

    test_acc = evaluate(model, X_test, y_test)
    print(f"test accuracy: {100 * test_acc:.2f}% ({round(test_acc * len(y_test))}/{len(y_test)})")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_plot(out / "digits_loss.png", history, test_acc)
    save_checkpoint(out / "checkpoint.npz", model, trainer, loader, history)
    total = time.perf_counter() - start
    print(
        f"saved {out / 'digits_loss.png'} and {out / 'checkpoint.npz'} "
        f"(trained in {train_time:.1f} s, {total:.1f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
