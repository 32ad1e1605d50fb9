"""Data-parallel training on two GPUs through NCCL (marked gpu: run on a two-GPU machine).

    PYTHONPATH=. python -m pytest -m gpu -q tests/test_distributed_gpu.py

Each test starts the ranks with minigrad's launcher (or torchrun), as a user would.
"""

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import test_distributed_worker as worker

import minigrad as mg

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "test_distributed_worker.py"

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", autouse=True)
def two_gpus():  # module scope: checked before the module-scoped training runs
    if not mg.gpu_available() or mg.backend.cupy_module().cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA GPUs")


def launch(*args, launcher=("-m", "minigrad.distributed.run"), timeout=180):
    # The environment passes through whole: NCCL_NVLS_ENABLE=0 stays as the machine sets it.
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, *launcher, "--nproc-per-node", "2", *map(str, args)]
    return worker.run_killing_all_on_timeout(command, environ, timeout)


def params(npz, run):
    count = len([k for k in npz.files if k.startswith(run)])
    return [npz[f"{run}{i}"] for i in range(count)]


@pytest.fixture(scope="module", params=["float64", "float32"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    result = launch(WORKER, "--backend", "nccl", "--dtype", request.param, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, [np.load(out / f"rank{r}.npz") for r in range(2)]


def test_after_training_every_gpu_holds_bit_identical_parameters(trained):
    _, ranks = trained
    for mine, theirs in zip(params(ranks[0], "a"), params(ranks[1], "a")):
        np.testing.assert_array_equal(mine, theirs)


def test_two_gpus_with_batch_b_match_one_gpu_with_batch_2b(trained):
    dtype, ranks = trained
    tolerance = {"float64": 1e-12, "float32": 1e-5}[dtype]
    expected, expected_losses = worker.reference(2, np.dtype(dtype), "gpu")
    for got, want in zip(params(ranks[0], "a"), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
    np.testing.assert_allclose(ranks[0]["losses"], expected_losses, rtol=tolerance)


def test_resume_from_rank_0s_checkpoint_is_exact_on_gpus(trained):
    _, ranks = trained
    for npz in ranks:
        for straight, resumed in zip(params(npz, "a"), params(npz, "b")):
            np.testing.assert_array_equal(straight, resumed)


def test_torchrun_starts_the_same_program(tmp_path):
    pytest.importorskip("torch")
    result = launch(
        WORKER, "--backend", "nccl", "--out", tmp_path, launcher=("-m", "torch.distributed.run")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for mine, theirs in zip(params(ranks[0], "a"), params(ranks[1], "a")):
        np.testing.assert_array_equal(mine, theirs)


def test_buckets_of_several_dtypes_average_exactly_on_gpus(tmp_path):
    path = tmp_path / "buckets.py"
    path.write_text(
        textwrap.dedent(
            """
            import numpy as np, cupy as cp
            import minigrad as mg, minigrad.distributed as dist
            group = dist.init_process_group(backend="nccl", bucket_cap_mb=0.01)
            assert cp.cuda.Device().id == group.local_rank
            shapes = [(3, 700), (5,), (2, 2, 900), (1,), (64, 64)]
            dtypes = [np.float32, np.float64, np.float16, np.float32, np.float64]
            params = [mg.zeros(*s, dtype=d, device="gpu", requires_grad=True)
                      for s, d in zip(shapes, dtypes)]
            grads = mg.GradientStore()
            for i, p in enumerate(params):
                grads[p] = cp.full(p.shape, 2.0 * (group.rank + 1) + i, dtype=p.dtype)
            kept = [grads[p] for p in params]
            dist.all_reduce(grads, params)
            plan = group._plans[tuple((p.shape, np.dtype(p.dtype).str) for p in params)]
            assert [b.members for b in plan] == [(1,), (0, 3), (4,), (2,)], plan
            for i, p in enumerate(params):
                assert grads[p] is kept[i]  # in place
                assert bool((grads[p] == 3.0 + i).all()), (i, grads[p])
            mg.manual_seed(group.rank)  # other weights and statistics on every rank
            model = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.BatchNorm1d(4)).to("gpu")
            model(mg.randn(8, 3, device="gpu") * (group.rank + 1))
            dist.broadcast_parameters(model)  # parameters and buffers, through NCCL
            mine = np.concatenate([t.numpy().ravel() for t in model.parameters() + model.buffers()])
            both = cp.stack([cp.asarray(mine)] * 2)
            group.all_reduce_([both[1]], "max")  # rank 0's == max over ranks == every rank's
            assert bool((both[0] == both[1]).all())
            print("ok", group.rank, len(plan))
            """
        )
    )
    result = launch(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok") == 2


def test_a_gpu_rank_that_hangs_is_named_and_the_nccl_collective_aborted(tmp_path):
    path = tmp_path / "hang.py"
    path.write_text(
        textwrap.dedent(
            """
            import time
            import cupy as cp
            import minigrad.distributed as dist
            group = dist.init_process_group(backend="nccl", timeout=3)
            group.barrier()
            if group.rank == 1:
                time.sleep(60)
            group.all_reduce_([cp.ones(1000, dtype=cp.float32)])
            """
        )
    )
    result = launch(path, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rank 0: all_reduce (sum) (collective #2) did not complete within 3 s" in result.stderr
    assert "rank 1 has not reached it" in result.stderr
