"""minigrad.distributed without other processes: the launcher's variables, buckets, the
sampler, the words of the timeout error, and a group of one process."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.distributed as dist
from minigrad.distributed import bucketing, env, rendezvous, run
from minigrad.distributed.errors import DistributedError

# ---------------------------------------------------------------- the launcher's variables

TORCHRUN = {
    "RANK": "3",
    "WORLD_SIZE": "4",
    "LOCAL_RANK": "1",
    "MASTER_ADDR": "10.0.0.7",
    "MASTER_PORT": "29500",
}


def test_torchrun_variables_are_read_and_minigrad_uses_the_port_after_torchs():
    launch = env.from_environment(TORCHRUN)
    assert launch == env.LaunchEnv(3, 4, 1, "10.0.0.7", 29501)  # MASTER_PORT is torch's store


def test_minigrad_port_wins_over_master_port():
    launch = env.from_environment(dict(TORCHRUN, MINIGRAD_PORT="40000"))
    assert launch.port == 40000


def test_no_variables_is_one_process_alone():
    assert env.from_environment({}) == env.LaunchEnv(0, 1, 0, "", 0)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"RANK": None}, "RANK is not set"),
        ({"RANK": "4"}, "RANK=4 must be smaller than WORLD_SIZE=4"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be >= 1"),
        ({"MASTER_ADDR": None}, "MASTER_ADDR is not set"),
        ({"MASTER_PORT": None}, "MASTER_PORT is not set"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 must be between 1 and 65534"),
    ],
)
def test_bad_or_missing_variables_are_named(change, words):
    environ = dict(TORCHRUN)
    for key, value in change.items():
        if value is None:
            del environ[key]
        else:
            environ[key] = value
    with pytest.raises(DistributedError, match=words):
        env.from_environment(environ)


def test_launcher_sets_what_torchrun_sets_and_passes_the_rest_through():
    args = run.parse_args(["--nproc-per-node", "3", "train.py", "--lr", "0.1"])
    assert (args.script, args.script_args) == ("train.py", ["--lr", "0.1"])
    base = {"NCCL_NVLS_ENABLE": "0", "PATH": "/bin"}
    envs = run.rank_environments(args, base)
    assert [e["RANK"] for e in envs] == ["0", "1", "2"]
    assert [e["LOCAL_RANK"] for e in envs] == ["0", "1", "2"]
    for e in envs:
        assert e["WORLD_SIZE"] == "3" and e["LOCAL_WORLD_SIZE"] == "3"
        assert e["MASTER_ADDR"] == "127.0.0.1" and int(e["MASTER_PORT"]) > 0
        assert e["NCCL_NVLS_ENABLE"] == "0" and e["PATH"] == "/bin"  # untouched
        assert int(e["MINIGRAD_PORT"]) > 0 and e["MINIGRAD_PORT"] == envs[0]["MINIGRAD_PORT"]
        assert env.from_environment(e).world_size == 3
        assert e["OMP_NUM_THREADS"] == "1"  # as torchrun: N processes share the cores
    assert run.rank_environments(args, {"OMP_NUM_THREADS": "4"})[0]["OMP_NUM_THREADS"] == "4"


def test_launcher_on_the_second_of_two_machines():
    argv = "--nnodes 2 --node-rank 1 --nproc_per_node 2 --master-addr 10.0.0.1 t.py".split()
    envs = run.rank_environments(run.parse_args(argv), {})
    assert [(e["RANK"], e["LOCAL_RANK"]) for e in envs] == [("2", "0"), ("3", "1")]
    assert envs[0]["WORLD_SIZE"] == "4" and envs[0]["MASTER_PORT"] == "29500"
    assert "MINIGRAD_PORT" not in envs[0]  # every machine must agree: MASTER_PORT + 1
    assert env.from_environment(envs[0]).port == 29501


@pytest.mark.parametrize(
    "argv", [["--nproc-per-node", "0", "t.py"], ["--nnodes", "2", "--node-rank", "2", "t.py"]]
)
def test_launcher_refuses_bad_counts(argv, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(argv)
    assert "must be" in capsys.readouterr().err


# ---------------------------------------------------------------- buckets

DTYPES = [np.float16, np.float32, np.float64]
shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
entries = st.lists(st.tuples(shapes, st.sampled_from(DTYPES)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(entries=entries, cap=st.integers(1, 400))
def test_buckets_hold_each_array_once_one_dtype_each_and_within_the_cap(entries, cap):
    plan = bucketing.plan_buckets([s for s, _ in entries], [d for _, d in entries], cap)
    members = [i for b in plan for i in b.members]
    assert sorted(members) == list(range(len(entries)))
    for bucket in plan:
        assert {np.dtype(entries[i][1]) for i in bucket.members} == {bucket.dtype}
        assert list(bucket.members) == sorted(bucket.members)  # the given order
        nbytes = bucket.numel * bucket.dtype.itemsize
        assert nbytes <= cap or len(bucket.members) == 1
        assert bucket.offsets[0] == 0
        ends = [o + n for o, n in zip(bucket.offsets, bucket.sizes)]
        assert list(bucket.offsets[1:]) == ends[:-1]  # back to back


@settings(max_examples=60, deadline=None)
@given(entries=entries, cap=st.integers(1, 400))
def test_pack_then_unpack_writes_each_slice_back_into_its_own_array(entries, cap):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s).astype(d) for s, d in entries]
    originals = [a.copy() for a in arrays]
    identities = [id(a) for a in arrays]
    for bucket in bucketing.plan_buckets([a.shape for a in arrays], [a.dtype for a in arrays], cap):
        flat = bucketing.pack(bucket, arrays)
        assert flat.ndim == 1 and flat.dtype == bucket.dtype and flat.size == bucket.numel
        flat *= 2  # what an all-reduce of two equal ranks would give
        bucketing.unpack(bucket, flat, arrays)
    assert [id(a) for a in arrays] == identities  # in place
    for a, before in zip(arrays, originals):
        np.testing.assert_array_equal(a, before * 2)


def test_the_default_bucket_is_ddps_25_mb_and_a_big_array_gets_its_own():
    assert bucketing.DEFAULT_CAP_BYTES == 25 * 2**20
    plan = bucketing.plan_buckets([(10,), (30 * 2**18,), (10,)], [np.float32] * 3)
    assert [b.members for b in plan] == [(0,), (1,), (2,)]
    with pytest.raises(ValueError, match="bucket size must be > 0"):
        bucketing.plan_buckets([(1,)], [np.float32], 0)


def test_an_array_alone_in_its_bucket_is_reduced_where_it_lies():
    big = np.ones((10, 10), np.float32)
    (bucket,) = bucketing.plan_buckets([big.shape], [big.dtype], cap_bytes=16)
    flat = bucketing.pack(bucket, [big])
    flat += 1  # no copy: the collective changes the gradient itself
    bucketing.unpack(bucket, flat, [big])
    np.testing.assert_array_equal(big, np.full((10, 10), 2.0))


def test_pack_and_unpack_on_the_device(device):
    xp = mg.backend.xp_for(device)
    arrays = [xp.arange(6, dtype=np.float32).reshape(2, 3), xp.ones(4, dtype=np.float32)]
    (bucket,) = bucketing.plan_buckets([a.shape for a in arrays], [a.dtype for a in arrays])
    flat = bucketing.pack(bucket, arrays)
    assert mg.backend.device_of(flat) == device
    flat += 1
    bucketing.unpack(bucket, flat, arrays)
    np.testing.assert_array_equal(mg.backend.to_numpy(arrays[1]), np.full(4, 2.0))


# ---------------------------------------------------------------- the sampler


def shards(n, world, epoch=0, **options):
    return [
        dist.DistributedSampler(n, num_replicas=world, rank=r, **options).indices(epoch)
        for r in range(world)
    ]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), world=st.integers(1, 7), epoch=st.integers(0, 5))
def test_shards_are_equal_and_together_cover_the_epoch(n, world, epoch):
    parts = shards(n, world, epoch)
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) == -(-n // world)
    assert set(np.concatenate(parts)) == set(range(n))
    for p in parts:
        assert p.dtype == np.int64


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), world=st.integers(1, 7), epoch=st.integers(0, 5))
def test_with_drop_last_the_shards_are_disjoint_and_drop_only_the_tail(n, world, epoch):
    if n < world:
        with pytest.raises(ValueError, match="leaves every rank nothing"):
            shards(n, world, epoch, drop_last=True)
        return
    parts = shards(n, world, epoch, drop_last=True)
    together = np.concatenate(parts)
    assert len(together) == len(set(together)) == (n // world) * world
    assert all(len(p) == n // world for p in parts)


def test_every_rank_cuts_the_same_permutation_seeded_by_seed_plus_epoch():
    parts = shards(10, 3, epoch=4, seed=5)
    permutation = np.random.default_rng(5 + 4).permutation(10)
    padded = np.concatenate([permutation, permutation[:2]])  # PyTorch pads from the start
    for rank, part in enumerate(parts):
        np.testing.assert_array_equal(part, padded[rank::3])
    assert not np.array_equal(shards(10, 3, epoch=5, seed=5)[0], parts[0])
    np.testing.assert_array_equal(shards(10, 3, epoch=4, seed=5)[0], parts[0])  # determined


def test_no_shuffle_pads_by_repeating_as_often_as_needed():
    parts = shards(2, 5, shuffle=False)
    assert [p.tolist() for p in parts] == [[0], [1], [0], [1], [0]]


def test_pytorchs_set_epoch_and_iteration_work_too():
    sampler = dist.DistributedSampler(20, num_replicas=2, rank=1)
    sampler.set_epoch(3)
    assert list(sampler) == sampler.indices(3).tolist() and len(sampler) == 10


def test_the_sampler_takes_its_rank_from_the_group_or_says_to_make_one():
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.DistributedSampler(10)
    assert dist.DistributedSampler(np.zeros((7, 2)), num_replicas=2, rank=0).dataset_size == 7
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)


def test_sampler_state_round_trip_restores_the_order_of_every_epoch():
    saved = dist.DistributedSampler(50, num_replicas=2, rank=0, seed=11)
    resumed = dist.DistributedSampler(50, num_replicas=2, rank=0, seed=0)
    resumed.load_state_dict(saved.state_dict())
    for epoch in range(3):
        np.testing.assert_array_equal(resumed.indices(epoch), saved.indices(epoch))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"dataset_size": 51}, "dataset_size=51"),
        ({"shuffle": False}, "shuffle=False"),
        ({"drop_last": True}, "drop_last=True"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"extra": 1}, "unexpected key 'extra'"),
    ],
)
def test_a_sampler_state_that_does_not_fit_is_refused_and_changes_nothing(change, words):
    sampler = dist.DistributedSampler(50, num_replicas=2, rank=0, seed=3)
    state = dict(dist.DistributedSampler(50, num_replicas=2, rank=0, seed=9).state_dict())
    state.update(change)
    with pytest.raises(ValueError, match=words):
        sampler.check_state_dict(state)
    with pytest.raises(ValueError, match=words):
        sampler.load_state_dict(state)
    assert sampler.seed == 3


# ---------------------------------------------------------------- the words of a timeout


def test_the_board_names_the_rank_that_is_behind_gone_or_left():
    board = {
        "entered": {0: 5, 1: 4, 2: 5, 3: 5},
        "state": {0: "running", 1: "running", 2: "gone", 3: "left"},
    }
    words = rendezvous.describe_missing(0, 5, board)
    assert "rank 1 has not reached it (it entered 4 collectives so far)" in words
    assert "rank 2 is gone" in words and "rank 3 has left the group" in words
    assert "rank 0 does not answer" in rendezvous.describe_missing(1, 5, None)
    everyone = {"entered": {0: 5, 1: 5}, "state": {0: "running", 1: "running"}}
    assert "every rank entered it" in rendezvous.describe_missing(0, 5, everyone)


# ---------------------------------------------------------------- a group of one


@pytest.fixture
def alone(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    group = dist.init_process_group(backend="cpu")
    yield group
    dist.destroy_process_group()


def test_one_process_alone_is_a_group_whose_collectives_change_nothing(alone):
    assert (dist.get_rank(), dist.get_world_size(), alone.is_main_process) == (0, 1, True)
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    grads = (x * x).sum().backward()
    assert dist.all_reduce(grads) is grads
    np.testing.assert_array_equal(grads[x], [2.0, 4.0])
    assert alone.sum_over_ranks(1.5, np.array(2.0)) == (1.5, 2.0)
    dist.barrier()


def test_init_twice_and_bad_arguments_are_refused(alone):
    with pytest.raises(DistributedError, match="already called"):
        dist.init_process_group()
    dist.destroy_process_group()
    with pytest.raises(ValueError, match="backend='cpu'"):
        dist.init_process_group(backend="gloo")
    with pytest.raises(ValueError, match="backend must be one of"):
        dist.init_process_group(backend="mpi")
    with pytest.raises(ValueError, match="timeout must be"):
        dist.init_process_group(backend="cpu", timeout=0)
    dist.init_process_group(backend="cpu")  # for the fixture to destroy


def test_all_reduce_wants_a_gradient_store(alone):
    with pytest.raises(TypeError, match="averages a GradientStore"):
        dist.all_reduce(np.ones(3))


def test_without_a_group_the_helpers_say_to_make_one():
    assert (dist.get_rank(), dist.get_world_size(), dist.is_initialized()) == (0, 1, False)
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.all_reduce(mg.GradientStore())


# ---------------------------------------------------------------- the Trainer's hook


class RankOneOfTwo:
    """A stand-in for rank 1 of a group of two whose other rank has the same numbers."""

    rank, world_size = 1, 2

    def average_gradients(self, grads, params=None):
        return grads  # (g + g) / 2

    def sum_over_ranks(self, *values):
        return tuple(2 * float(v) for v in values)


def test_a_trainer_of_rank_1_averages_and_leaves_the_checkpoints_to_rank_0(tmp_path):
    mg.manual_seed(0)
    model = mg.nn.Linear(3, 1)
    trainer = mg.optim.Trainer(
        mg.optim.SGD(model.parameters(), lr=0.1), process_group=RankOneOfTwo()
    )
    x, y = mg.randn(4, 3), mg.randn(4, 1)
    history = trainer.fit(
        model, [(x, y)], epochs=2, loss_fn=mg.nn.functional.mse_loss, checkpoint_dir=tmp_path
    )
    assert len(history) == 2 and np.isfinite(history[-1]["train_loss"])
    assert list(tmp_path.iterdir()) == []  # rank 0 writes them


# ---------------------------------------------------------------- a start-up that cannot finish


@pytest.mark.parametrize(
    "rank, words",
    [
        ("0", r"rank 0 waited for the other ranks on port \d+; ranks \[1\] never joined"),
        ("1", r"rank 1 could not reach rank 0 at 127.0.0.1:\d+ .*is rank 0 running"),
    ],
)
def test_a_rank_alone_at_the_start_gives_up_after_the_timeout_naming_who_is_missing(
    monkeypatch, rank, words
):
    environ = dict(RANK=rank, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="1")
    environ["MINIGRAD_PORT"] = str(run.free_port())
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DistributedError, match=words):
        dist.init_process_group(backend="cpu", timeout=0.3)
    assert not dist.is_initialized()


def test_a_trainer_refuses_to_record_a_process_groups_all_reduce_in_a_cuda_graph():
    opt = mg.optim.SGD(mg.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="cannot record a process group's all-reduce"):
        mg.optim.Trainer(opt, process_group=RankOneOfTwo(), cuda_graph=True)


# ---------------------------------------------------------------- with the DataLoader


def loaders_of(n, world, **options):
    X, y = np.arange(n, dtype=np.float32)[:, None], np.arange(n)
    return [
        mg.data.DataLoader(
            X, y, batch_size=4, sampler=dist.DistributedSampler(n, world, r, **options)
        )
        for r in range(world)
    ]


def test_a_data_loader_with_the_sampler_gives_each_rank_its_shard_in_batches():
    loaders = loaders_of(22, 2, seed=3)
    for epoch in range(3):
        seen = [np.concatenate([yb.numpy() for _, yb in loader]) for loader in loaders]
        for loader, got in zip(loaders, seen):
            np.testing.assert_array_equal(got, loader.sampler.indices(epoch))
            assert len(loader) == 3  # 11 examples each, in batches of 4
        assert set(np.concatenate(seen)) == set(range(22))


def test_the_loaders_state_carries_the_sampler_and_refuses_another_one():
    (loader,) = loaders_of(20, 1, seed=5)
    next(iter(loader))
    state = loader.state_dict()
    assert state["sampler"] == {"seed": 5, "dataset_size": 20, "shuffle": True, "drop_last": False}
    (resumed,) = loaders_of(20, 1, seed=0)
    resumed.load_state_dict(state)
    assert resumed.sampler.seed == 5
    (other,) = loaders_of(20, 1, drop_last=True)
    with pytest.raises(ValueError, match="drop_last=False, this one has drop_last=True"):
        other.load_state_dict(state)
