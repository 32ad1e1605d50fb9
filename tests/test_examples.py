"""Every example runs to the end in its --quick mode, in a fresh process, so none of them rots.

The examples run from a temporary folder (nothing is written into the repository) with
MINIGRAD_DEVICE unset, so they use the CPU as a user's first run would.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


def run_example(name: str, *args: str, cwd: Path, path=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_DEVICE"}
    env["MPLBACKEND"] = "Agg"
    # The minigrad of this tree, whatever the cwd (a relative PYTHONPATH=. would name tmp_path).
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")])
    if path is not None:  # where the example looks for programs (Graphviz's dot)
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_the_examples_are_the_numbered_set():
    assert SCRIPTS == [
        "01_autograd_basics.py",
        "02_linear_regression.py",
        "03_xor.py",
        "04_digits_mlp.py",
        "05_mnist.py",
        "06_custom_op.py",
        "07_gpu_fused_optimizer.py",
        "08_cnn_digits.py",
        "09_batchnorm.py",
        "10_char_mlp.py",
        "11_tiny_gpt.py",
        "12_cuda_graph.py",
        "13_data_parallel.py",
    ]


@pytest.mark.parametrize(
    "name",
    [
        s
        for s in SCRIPTS
        if s not in ("04_digits_mlp.py", "05_mnist.py")
        and (s < "08" or s in ("12_cuda_graph.py", "13_data_parallel.py"))
    ],
)
def test_example_runs_quick(name, tmp_path):
    out = check(run_example(name, "--quick", cwd=tmp_path))
    assert out.strip(), "an example should tell the reader something"


def test_autograd_basics_prints_the_graph(tmp_path):
    out = check(run_example("01_autograd_basics.py", cwd=tmp_path))
    assert "digraph minigrad" in out and "dz/dx" in out


def test_autograd_basics_draws_the_graph_where_graphviz_is_installed(tmp_path):
    """A stand-in `dot` on PATH records how it is called and writes a PNG signature."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$(dirname "$0")/args"\n'
        "for last; do :; done\n"  # the last argument: the -o file
        "printf '\\211PNG\\r\\n\\032\\n' > \"$last\"\n"
    )
    fake.chmod(0o755)
    env_path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run_example("01_autograd_basics.py", "--out", "graph", cwd=tmp_path, path=env_path)
    out = check(result)
    assert "drew the graph to graph/graph.png" in out
    assert (tmp_path / "graph" / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "graph" / "graph.dot").read_text().startswith("digraph minigrad")
    assert (bin_dir / "args").read_text().split()[:1] == ["-Tpng"]


def test_autograd_basics_without_graphviz_says_so(tmp_path):
    out = check(run_example("01_autograd_basics.py", cwd=tmp_path, path=str(tmp_path)))
    assert "`dot` is not installed" in out


def png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cnn_quick_trains_reports_accuracy_and_plots(tmp_path):
    out = check(run_example("08_cnn_digits.py", "--quick", "--out", "run", cwd=tmp_path))
    assert "epoch  2/2" in out and "digits test accuracy" in out
    assert "MNIST: not run" in out  # no files in the temporary folder
    assert png(tmp_path / "run" / "cnn_loss.png")


def test_batchnorm_quick_prints_layer_statistics_and_the_picture(tmp_path):
    out = check(run_example("09_batchnorm.py", "--quick", "--out", "run", cwd=tmp_path))
    assert out.count("std of tanh outputs") == 2 and "after 2 epochs" in out
    assert png(tmp_path / "run" / "activations.png")


@pytest.mark.parametrize(
    "name, plot", [("10_char_mlp.py", "char_mlp_loss.png"), ("11_tiny_gpt.py", "tiny_gpt_loss.png")]
)
def test_language_models_quick_print_loss_and_a_sample(name, plot, tmp_path):
    out = check(run_example(name, "--quick", "--out", "run", cwd=tmp_path))
    assert "val loss" in out and "--- a sample" in out
    sample = out.split("--- a sample (temperature 1) ---\n")[1].split("\n---")[0]
    assert len(sample) >= 50
    assert png(tmp_path / "run" / plot)


def test_digits_demo_quick_writes_plot_and_checkpoint(tmp_path):
    out = check(run_example("04_digits_mlp.py", "--quick", "--out", "run", cwd=tmp_path))
    assert "epoch  1/2" in out and "epoch  2/2" in out and "test accuracy" in out
    png = tmp_path / "run" / "digits_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The checkpoint is a minigrad checkpoint that loads into the same architecture.
    import minigrad as mg
    from minigrad import nn

    info = mg.read_info(tmp_path / "run" / "checkpoint.npz")
    assert info["contents"]["optimizers"] == 2 and info["contents"]["trainer"]
    assert len(info["extra"]["history"]) == 2
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    before = [p.numpy().copy() for p in model.parameters()]
    mg.load(tmp_path / "run" / "checkpoint.npz", model=model, rng=False)
    assert any(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))


def test_digits_demo_rejects_an_unknown_device(tmp_path):
    result = run_example("04_digits_mlp.py", "--device", "tpu", "--quick", cwd=tmp_path)
    assert result.returncode == 2 and "unknown device 'tpu'" in result.stderr


def test_mnist_quick_without_the_files_uses_labeled_synthetic_data(tmp_path):
    out = check(run_example("05_mnist.py", "--quick", "--root", "nothing", cwd=tmp_path))
    assert "SYNTHETIC" in out and "epoch 1/1" in out


def test_mnist_without_files_or_network_explains_and_exits_0(tmp_path):
    out = check(run_example("05_mnist.py", "--root", "nothing", "--no-download", cwd=tmp_path))
    assert "MNIST is not available" in out and "train-images-idx3-ubyte.gz" in out
    assert "--synthetic" in out


def test_mnist_reads_real_idx_files_from_root(tmp_path):
    """05 on files in --root: the tiny files are uncompressed, as after `gunzip`."""
    rng = np.random.default_rng(0)
    from minigrad import data

    root = tmp_path / "mnist"
    root.mkdir()
    for split, n in (("train", 300), ("test", 100)):
        arrays = {
            "images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            "labels": rng.integers(0, 10, n, dtype=np.uint8),
        }
        for kind, array in arrays.items():
            data.write_idx(root / data.MNIST_FILES[f"{split}_{kind}"][0][:-3], array)
    out = check(run_example("05_mnist.py", "--quick", "--root", str(root), cwd=tmp_path))
    assert f"MNIST from {root}: 300 training and 100 test images" in out


def test_cnn_trains_lenet5_on_mnist_files_when_present(tmp_path):
    """08 with IDX files in --mnist-root (tiny random ones, uncompressed as after gunzip)."""
    rng = np.random.default_rng(0)
    from minigrad import data

    root = tmp_path / "mnist"
    root.mkdir()
    for split, n in (("train", 200), ("test", 50)):
        arrays = {
            "images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            "labels": rng.integers(0, 10, n, dtype=np.uint8),
        }
        for kind, array in arrays.items():
            data.write_idx(root / data.MNIST_FILES[f"{split}_{kind}"][0][:-3], array)
    args = ("--quick", "--mnist-root", str(root), "--out", "run")
    out = check(run_example("08_cnn_digits.py", *args, cwd=tmp_path))
    assert "MNIST: 200 training images (1, 28, 28), 61,706 parameters" in out
    assert "MNIST test accuracy" in out
