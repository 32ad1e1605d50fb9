"""The NumPy/CuPy switch: device names, the default device, lazy CuPy, transfers, mixed devices."""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend

ROOT = Path(__file__).resolve().parents[1]


def run_python(code, extra_path=(), **env_vars):
    """Run `code` in a fresh interpreter that imports this checkout's minigrad."""
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_DEVICE"}
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def restore_default_device():
    before = backend.get_default_device()
    yield
    backend._default_device = before  # set directly: the GPU may be faked away by then


@pytest.fixture
def broken_cupy_dir(tmp_path):
    """A folder with a `cupy` package that fails to import, as on a machine without CUDA."""
    package = tmp_path / "cupy"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ImportError('libcudart.so.13: cannot open shared object file')\n"
    )
    return tmp_path


def fake_cupy(device_count):
    """A stand-in `cupy` module whose runtime reports `device_count` (or raises it)."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=runtime), ndarray=type("ndarray", (), {})
    )


@pytest.fixture
def no_gpu(monkeypatch):
    """Make this process see CuPy as not installed, whatever the machine has."""

    def install(module=None):
        monkeypatch.setitem(sys.modules, "cupy", module)  # None: `import cupy` raises
        monkeypatch.setattr(backend, "_cupy", None)
        monkeypatch.setattr(backend, "_cupy_error", None)

    install()
    return install


# ---------------------------------------------------------------- device names


@pytest.mark.parametrize(
    "name, expected",
    [("cpu", "cpu"), ("CPU", "cpu"), ("gpu", "gpu"), ("cuda", "gpu"), (" Cuda ", "gpu")]
    + [("cuda:0", "gpu")],
)
def test_device_names_and_the_cuda_alias(name, expected):
    assert backend.normalize_device(name) == expected


@pytest.mark.parametrize("name", ["tpu", "cuda:1", "", "gpu0"])
def test_unknown_device_names_raise(name):
    with pytest.raises(ValueError, match="unknown device .* use 'cpu' or 'gpu'"):
        backend.normalize_device(name)


def test_a_device_must_be_a_string():
    with pytest.raises(TypeError, match="device must be a string"):
        backend.normalize_device(0)


# ---------------------------------------------------------------- the GPU missing


def test_without_cupy_the_gpu_is_unavailable_and_asking_for_it_says_why(
    no_gpu, restore_default_device
):
    assert mg.gpu_available() is False
    backend.set_default_device("cpu")
    with pytest.raises(mg.DeviceError, match="GPU was requested but cannot be used: CuPy is not"):
        mg.tensor([1.0], device="gpu")
    with pytest.raises(mg.DeviceError, match="pip install 'minigrad\\[gpu\\]'"):
        mg.set_default_device("cuda")
    assert mg.get_default_device() == "cpu"  # unchanged by the failed switch
    with pytest.raises(mg.DeviceError):
        mg.zeros(2, device="gpu")
    with pytest.raises(mg.DeviceError):
        mg.tensor([1.0]).to("gpu")
    with pytest.raises(mg.DeviceError):
        backend.xp_for("gpu")


@pytest.mark.parametrize(
    "count, reason",
    [
        (0, "CuPy is installed but this machine has no CUDA device"),
        (RuntimeError("cudaErrorNoDevice"), "no CUDA device could be opened \\(cudaErrorNoDevice"),
    ],
)
def test_cupy_without_a_cuda_device_says_so(no_gpu, count, reason):
    no_gpu(fake_cupy(count))
    assert mg.gpu_available() is False
    with pytest.raises(mg.DeviceError, match=reason):
        mg.tensor([1.0], device="gpu")


def test_import_minigrad_never_imports_cupy():
    code = (
        "import sys\n"
        "import minigrad as mg\n"
        "from minigrad.gradcheck import gradcheck\n"
        "from minigrad.viz import to_dot\n"
        "x = mg.tensor([[1.0, -2.0]], requires_grad=True)\n"
        "loss = (mg.tanh(x @ x.T) + x.sum()).sum()\n"
        "grads = loss.backward()\n"
        "to_dot(loss)\n"
        "print(mg.get_default_device(), grads[x].shape, 'cupy' in sys.modules)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu", "(1,", "2)", "False"]


def test_a_broken_cupy_install_does_not_break_import_and_its_error_is_reported(broken_cupy_dir):
    code = (
        "import minigrad as mg\n"
        "print(mg.gpu_available())\n"
        "try:\n"
        "    mg.tensor([1.0], device='gpu')\n"
        "except mg.DeviceError as e:\n"
        "    print(e)\n"
    )
    result = run_python(code, extra_path=[broken_cupy_dir])
    assert result.returncode == 0, result.stderr
    available, message = result.stdout.splitlines()
    assert available == "False"
    assert "cannot be used" in message and "libcudart.so.13" in message


# ---------------------------------------------------------------- the default device


@pytest.mark.parametrize("value, expected", [("cpu", "cpu"), ("", "cpu"), ("CPU", "cpu")])
def test_minigrad_device_sets_the_starting_default(value, expected):
    result = run_python(
        "import minigrad as mg; print(mg.get_default_device(), mg.tensor([1.0]).device)",
        MINIGRAD_DEVICE=value,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, expected]


@pytest.mark.gpu
def test_minigrad_device_cuda_starts_on_the_gpu():
    result = run_python(
        "import minigrad as mg; print(mg.get_default_device(), mg.zeros(2).device)",
        MINIGRAD_DEVICE="cuda",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gpu", "gpu"]


def test_minigrad_device_gpu_without_a_gpu_fails_at_the_first_tensor_not_at_import(
    broken_cupy_dir,
):
    code = (
        "import minigrad as mg\n"
        "print(mg.get_default_device())\n"
        "try:\n"
        "    mg.tensor([1.0])\n"
        "except mg.DeviceError as e:\n"
        "    print('DeviceError', 'libcudart' in str(e))\n"
    )
    result = run_python(code, extra_path=[broken_cupy_dir], MINIGRAD_DEVICE="gpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gpu", "DeviceError", "True"]


def test_an_unknown_minigrad_device_names_the_variable():
    result = run_python("import minigrad", MINIGRAD_DEVICE="tpu")
    assert result.returncode != 0
    assert "environment variable MINIGRAD_DEVICE='tpu' is not a device" in result.stderr


def test_set_default_device_cpu(restore_default_device):
    mg.set_default_device("CPU")
    assert mg.get_default_device() == "cpu"
    assert mg.tensor([1.0]).device == "cpu"
    assert backend.resolve_device(None) == "cpu"
    assert backend.resolve_device("cuda") == "gpu"


@pytest.mark.gpu
def test_set_default_device_gpu_moves_every_constructor(restore_default_device):
    mg.set_default_device("cuda")
    assert mg.get_default_device() == "gpu"
    made = [
        mg.tensor([1.0]),
        mg.zeros(2),
        mg.ones(2),
        mg.full(2, 3.0),
        mg.randn(2),
        mg.rand(2),
        mg.arange(3),
    ]
    assert [t.device for t in made] == ["gpu"] * len(made)
    assert mg.tensor([1.0], device="cpu").device == "cpu"


# ---------------------------------------------------------------- array modules and transfers


@pytest.mark.parametrize("value", [np.zeros(2), np.float32(1.0), 3.0, [1.0]])
def test_host_values_belong_to_numpy(value):
    assert backend.xp_of(value) is np
    assert backend.device_of(value) == "cpu"
    assert not backend.is_gpu_array(value)


def test_xp_for_cpu_is_numpy():
    assert backend.xp_for("cpu") is np


def test_to_device_cpu_does_not_copy_a_host_array():
    array = np.arange(3.0)
    assert backend.to_device(array, "cpu") is array
    assert backend.to_numpy(array) is array


@pytest.mark.gpu
def test_transfers_both_ways_and_the_cupy_module():
    import cupy

    host = np.arange(6.0).reshape(2, 3)
    on_gpu = backend.to_device(host, "cuda")
    assert isinstance(on_gpu, cupy.ndarray)
    assert backend.xp_of(on_gpu) is cupy and backend.xp_for("gpu") is cupy
    assert backend.device_of(on_gpu) == "gpu" and backend.is_gpu_array(on_gpu)
    assert backend.to_device(on_gpu, "gpu") is on_gpu
    back = backend.to_device(on_gpu, "cpu")
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host)
    t = mg.tensor(on_gpu)  # a CuPy array stays on the GPU by default
    assert t.device == "gpu"


def test_scatter_add_counts_repeated_indices(device):
    xp = backend.xp_for(device)
    target = xp.zeros(4)
    backend.scatter_add(target, xp.asarray([1, 3, 1]), xp.asarray([1.0, 2.0, 3.0]))
    assert backend.to_numpy(target).tolist() == [0.0, 4.0, 0.0, 2.0]


# ---------------------------------------------------------------- mixed devices

MIXED = [
    pytest.param(lambda c, g: c + g, id="add"),
    pytest.param(lambda c, g: g - c, id="sub"),
    pytest.param(lambda c, g: c * g, id="mul"),
    pytest.param(lambda c, g: g / c, id="div"),
    pytest.param(lambda c, g: c**g, id="pow"),
    pytest.param(lambda c, g: c @ g, id="matmul"),
    pytest.param(lambda c, g: mg.maximum(c, g), id="maximum"),
    pytest.param(lambda c, g: mg.minimum(g, c), id="minimum"),
    pytest.param(lambda c, g: mg.where(c > 0, g, g), id="where-condition"),
    pytest.param(lambda c, g: mg.where(g > 0, c, g), id="where-values"),
    pytest.param(lambda c, g: mg.concatenate([c, g]), id="concatenate"),
    pytest.param(lambda c, g: mg.stack([g, c]), id="stack"),
    pytest.param(lambda c, g: c < g, id="less"),
    pytest.param(lambda c, g: g == c, id="equal"),
    pytest.param(lambda c, g: g[mg.tensor([0, 1])], id="index"),
    pytest.param(lambda c, g: c + g.data, id="raw-cupy-array"),
]


@pytest.mark.gpu
@pytest.mark.parametrize("op", MIXED)
def test_an_op_on_two_devices_names_both(op):
    c = mg.tensor([1.0, 2.0], requires_grad=True)
    g = mg.tensor([3.0, 4.0], requires_grad=True, device="gpu")
    with pytest.raises(mg.DeviceError, match=r"inputs live on different devices \(cpu and gpu\)"):
        op(c, g)


@pytest.mark.gpu
def test_backward_with_a_gradient_on_the_other_device_names_both():
    y = mg.tensor([1.0, 2.0], requires_grad=True, device="gpu") * 2
    with pytest.raises(mg.DeviceError, match="gradient is on cpu but the tensor is on gpu"):
        y.backward(np.ones(2, dtype=np.float32))


def test_add_rows_adds_every_row_of_a_repeated_id(device):
    rng = np.random.default_rng(3)
    ids = np.array([4, 1, 4, 0, 4, 1])
    rows = rng.standard_normal((6, 3))
    expected = np.zeros((5, 3))
    np.add.at(expected, ids, rows)
    target = backend.to_device(np.zeros((5, 3)), device)
    backend.add_rows(target, backend.to_device(ids, device), backend.to_device(rows, device))
    np.testing.assert_allclose(backend.to_numpy(target), expected, rtol=1e-15, atol=1e-15)
    backend.add_rows(
        target, backend.to_device(ids[:0], device), backend.to_device(rows[:0], device)
    )
