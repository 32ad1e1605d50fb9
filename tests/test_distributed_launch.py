"""Several processes on the CPU: the launcher, the CPU backend, failures and timeouts.

Each test starts `python -m minigrad.distributed.run` in a subprocess, as a user would.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import test_distributed_worker as worker

from minigrad.distributed import run

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "test_distributed_worker.py"


def launch(*args, nproc=2, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(ROOT), NCCL_NVLS_ENABLE="0")
    command = [sys.executable, "-m", "minigrad.distributed.run", "--nproc-per-node", str(nproc)]
    command = [*command, "--grace", "2", *map(str, args)]
    return worker.run_killing_all_on_timeout(command, environ, timeout, cwd)


def start_by_hand(path: Path, nproc: int, timeout=60) -> list[subprocess.CompletedProcess]:
    """The ranks started without the launcher (which would stop the others at the first
    failure), to see what each of them says."""
    base = dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1")
    base.update(WORLD_SIZE=str(nproc), MASTER_PORT="0", MINIGRAD_PORT=str(run.free_port()))
    procs = [
        subprocess.Popen(
            [sys.executable, str(path)],
            env=dict(base, RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(nproc)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


# ---------------------------------------------------------------- training on N processes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The worker on 2 CPU processes, float64 (run once for the tests below)."""
    out = tmp_path_factory.mktemp("cpu2")
    result = launch(WORKER, "--backend", "cpu", "--dtype", "float64", "--out", out)
    assert result.returncode == 0, result.stderr
    return [np.load(out / f"rank{r}.npz") for r in range(2)]


def params(npz, run):
    return [npz[f"{run}{i}"] for i in range(len([k for k in npz.files if k.startswith(run)]))]


def test_every_rank_ends_with_bit_identical_parameters(trained):
    for mine, theirs in zip(params(trained[0], "a"), params(trained[1], "a")):
        np.testing.assert_array_equal(mine, theirs)


def test_two_ranks_with_batch_b_match_one_process_with_batch_2b(trained):
    expected, expected_losses = worker.reference(2, np.float64, "cpu")
    for got, want in zip(params(trained[0], "a"), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # the epoch's mean loss, averaged over ranks, is the one process's mean loss
    np.testing.assert_allclose(trained[0]["losses"], expected_losses, rtol=1e-12)
    np.testing.assert_array_equal(trained[0]["losses"], trained[1]["losses"])


def test_the_trainer_with_a_process_group_and_its_resume_from_rank_0s_checkpoint_are_exact(
    trained,
):
    for npz in trained:  # B: Trainer(process_group=...), saved and resumed after epoch 1
        for straight, resumed in zip(params(npz, "a"), params(npz, "b")):
            np.testing.assert_array_equal(straight, resumed)
        # the Trainer's epoch_avg_loss() is the mean over both ranks' examples
        np.testing.assert_allclose(npz["losses_b"], npz["losses"], rtol=1e-12)


def test_three_ranks_cover_what_one_process_sees(tmp_path):
    result = launch(WORKER, "--backend", "cpu", "--out", tmp_path, nproc=3)
    assert result.returncode == 0, result.stderr
    expected, _ = worker.reference(3, np.float64, "cpu")
    got = params(np.load(tmp_path / "rank2.npz"), "a")
    for g, want in zip(got, expected):
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- the launcher


def test_each_rank_gets_torchruns_variables_and_the_rest_of_the_environment(tmp_path):
    path = script(
        tmp_path,
        """
        import json, os, sys
        names = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                 "MINIGRAD_PORT", "NCCL_NVLS_ENABLE"]
        with open(f"env{os.environ['RANK']}.json", "w") as f:
            json.dump({"argv": sys.argv[1:], **{n: os.environ.get(n) for n in names}}, f)
        """,
    )
    result = launch(path, "--flag", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = [json.loads((tmp_path / f"env{r}.json").read_text()) for r in range(2)]
    assert [(s["RANK"], s["LOCAL_RANK"], s["WORLD_SIZE"]) for s in seen] == [
        ("0", "0", "2"),
        ("1", "1", "2"),
    ]
    assert all(s["argv"] == ["--flag", "x"] and s["NCCL_NVLS_ENABLE"] == "0" for s in seen)
    assert seen[0]["MINIGRAD_PORT"] == seen[1]["MINIGRAD_PORT"] is not None


def test_a_rank_that_fails_stops_the_others_and_is_named(tmp_path):
    path = script(
        tmp_path,
        """
        import os, sys, time
        if os.environ["RANK"] == "1":
            sys.exit(3)
        time.sleep(60)  # rank 0 would wait a minute: the launcher must stop it
        """,
    )
    result = launch(path, timeout=30)
    assert result.returncode == 3
    assert "rank 1 exited with code 3; stopping the other 1 running rank(s)" in result.stderr


def test_a_rank_that_hangs_makes_the_others_time_out_naming_it(tmp_path):
    path = script(
        tmp_path,
        """
        import os, time
        import numpy as np
        import minigrad.distributed as dist
        group = dist.init_process_group(backend="cpu", timeout=1)
        if group.rank == 1:
            time.sleep(60)  # hung: it never reaches the all-reduce
        group.all_reduce_([np.ones(3)])
        """,
    )
    result = launch(path, timeout=30)
    assert result.returncode == 1
    assert "DistributedTimeoutError: rank 0: all_reduce (sum) (collective #1) did not " in (
        result.stderr
    )
    assert "within 1 s: rank 1 has not reached it" in result.stderr
    assert "rank 0 exited with code 1" in result.stderr  # then the launcher stopped rank 1


def test_a_rank_that_dies_mid_training_is_named_by_every_other_rank(tmp_path):
    path = script(
        tmp_path,
        """
        import os
        import numpy as np
        import minigrad.distributed as dist
        group = dist.init_process_group(backend="cpu", timeout=20)
        group.all_reduce_([np.ones(3)])
        if group.rank == 2:
            os._exit(5)  # a crash: no goodbye
        group.all_reduce_([np.ones(3)])
        """,
    )
    ranks = start_by_hand(path, nproc=3)
    assert ranks[2].returncode == 5
    for rank in (0, 1):
        assert ranks[rank].returncode == 1
        assert "(collective #2) failed" in ranks[rank].stderr
    assert "rank 0: all_reduce (sum) (collective #2) failed: rank 2 is gone" in ranks[0].stderr
    # rank 1 hears it from rank 0, which reduces the arrays of the CPU backend
    assert "rank 0 reports: rank 0: all_reduce (sum)" in ranks[1].stderr


def test_ranks_that_disagree_on_the_model_get_an_error_not_a_hang(tmp_path):
    path = script(
        tmp_path,
        """
        import minigrad as mg, minigrad.distributed as dist
        group = dist.init_process_group(backend="cpu", timeout=20)
        model = mg.nn.Linear(3, 2 + group.rank)
        dist.broadcast_parameters(model)
        """,
    )
    result = launch(path, timeout=60)
    assert result.returncode == 1
    assert "the ranks disagree on the parameters" in result.stderr


def test_a_broken_group_refuses_further_collectives(tmp_path):
    path = script(
        tmp_path,
        """
        import time
        import numpy as np
        import minigrad.distributed as dist
        group = dist.init_process_group(backend="cpu", timeout=0.3)
        if group.rank == 0:
            try:
                group.all_reduce_([np.ones(1)])
            except dist.DistributedTimeoutError:
                pass
            try:
                group.barrier()
            except dist.DistributedError as exc:
                print("refused:", exc)
        else:
            time.sleep(1)
        """,
    )
    result = launch(path, timeout=30)
    assert "refused: rank 0: the process group broke earlier" in result.stdout


def test_broadcast_copies_rank_0s_parameters_and_buffers(tmp_path):
    path = script(
        tmp_path,
        """
        import numpy as np
        import minigrad as mg, minigrad.distributed as dist
        group = dist.init_process_group(backend="cpu", timeout=20)
        mg.manual_seed(group.rank)  # other weights on every rank
        model = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.BatchNorm1d(4))
        model.train()
        model(mg.randn(8, 3) * (group.rank + 1))  # other running statistics on every rank
        dist.broadcast_parameters(model)
        tensors = model.parameters() + model.buffers()
        np.savez(f"rank{group.rank}.npz", *[t.numpy() for t in tensors])
        """,
    )
    result = launch(path, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    assert len(ranks[0].files) >= 5  # weight, bias, gamma, beta, and the buffers
    for key in ranks[0].files:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])


def test_a_signal_to_the_launcher_reaches_every_rank(tmp_path):
    path = script(
        tmp_path,
        """
        import os, pathlib, signal, sys, time
        def stop(signum, frame):
            pathlib.Path(f"stopped{os.environ['RANK']}").write_text(str(signum))
            sys.exit(1)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path(f"started{os.environ['RANK']}").touch()
        time.sleep(60)
        """,
    )
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "minigrad.distributed.run", "--nproc-per-node", "2"]
    launcher = subprocess.Popen([*command, str(path)], env=environ, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"started{r}").exists() for r in range(2)):
            assert time.monotonic() < deadline and launcher.poll() is None
            time.sleep(0.05)
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        launcher.kill()
    for rank in range(2):
        assert (tmp_path / f"stopped{rank}").read_text() == str(int(signal.SIGTERM))


def test_fit_on_two_ranks_writes_on_rank_0_and_resumes_exactly_on_both(tmp_path):
    path = script(
        tmp_path,
        """
        import numpy as np
        import minigrad as mg, minigrad.distributed as dist
        from minigrad import nn, optim
        group = dist.init_process_group(backend="cpu", timeout=30)
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(48, 5)), rng.integers(0, 3, size=48)

        def fit(epochs, directory, seed=0):
            mg.manual_seed(seed)
            model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
            dist.broadcast_parameters(model)
            sampler = dist.DistributedSampler(len(X), seed=1)
            loader = mg.data.DataLoader(X, y, batch_size=6, sampler=sampler)
            trainer = optim.Trainer(optim.Adam(model.parameters(), lr=0.01), process_group=group)
            trainer.fit(model, loader, epochs=epochs, loss_fn=nn.functional.cross_entropy,
                        checkpoint_dir=directory, progress=False)
            return trainer, [p.numpy() for p in model.parameters()]

        trainer, straight = fit(3, "straight")
        fit(2, "resumed")
        dist.barrier()  # rank 0's epoch-2 file is complete before anyone resumes from it
        resumed_trainer, resumed = fit(3, "resumed", seed=99)  # epochs 1-2 are loaded
        assert resumed_trainer.epoch == 3, resumed_trainer.epoch
        for a, b in zip(straight, resumed):
            assert np.array_equal(a, b)
        np.savez(f"rank{group.rank}.npz", *straight,
                 losses=[r["train_loss"] for r in trainer.history])
        """,
    )
    result = launch(path, cwd=tmp_path, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for key in ranks[0].files:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == [
        f"epoch-{e:06d}.npz" for e in (1, 2, 3)
    ]
