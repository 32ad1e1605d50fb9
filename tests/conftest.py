"""Shared test fixtures: `device` runs a test on the CPU and, where there is one, the GPU.

GPU cases carry the `gpu` marker: `pytest -m gpu` runs only them, and they are skipped on a
machine without CuPy or a CUDA device (as in CI).
"""

import numpy as np
import pytest

import minigrad as mg

DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None and not mg.gpu_available():
        pytest.skip("needs a CUDA GPU with CuPy")


@pytest.fixture(params=DEVICES)
def device(request):
    """ "cpu", then "gpu" (marked `gpu`, skipped without one)."""
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random streams."""
    mg.manual_seed(0)
    np.random.seed(0)
    yield
