"""DistributedSampler: which examples each rank reads in an epoch.

Every rank draws the *same* permutation (seeded with seed + epoch), then takes every N-th
position starting at its rank, so the shards are disjoint and together cover the epoch:

    permutation   7 2 9 0 4 1 8 3 6 5        (10 examples, 3 ranks)
    padded        7 2 9 0 4 1 8 3 6 5 7 2    (to 12, a multiple of 3, by repeating the start)
    rank 0        7     0     8     5
    rank 1          2     4     3     7
    rank 2            9     1     6     2

With drop_last=True the tail is dropped instead (to 9 here), so no example counts twice.
This is PyTorch's DistributedSampler (its arguments, padding and numbers of samples), except
that the permutation comes from NumPy's generator, not torch's.

    sampler = DistributedSampler(len(X_train), shuffle=True, seed=0)   # rank from the group
    loader = DataLoader(X_train, y_train, batch_size=64, sampler=sampler)
    sampler.indices(epoch)    # this rank's order for that epoch (int64), the same every call

The DataLoader asks for indices(epoch) at the start of each epoch; PyTorch's set_epoch() and
iteration work too. The state (seed and the options that shape the order) goes into
checkpoints with the loader's, and a sampler built differently refuses it.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_count, check_flag, check_state_keys


class DistributedSampler:
    """DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
    drop_last=False)

    dataset: the number of examples, or anything with len() (an array, a dataset).
    num_replicas, rank: default to the process group's world size and rank.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        size = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        self.dataset_size = check_count("the dataset size", size, low=1)
        if num_replicas is None or rank is None:
            from .group import default_group

            group = default_group()
            num_replicas = group.world_size if num_replicas is None else num_replicas
            rank = group.rank if rank is None else rank
        self.num_replicas = check_count("num_replicas", num_replicas, low=1)
        self.rank = check_count("rank", rank)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank must be in 0..{self.num_replicas - 1}, got {self.rank}")
        self.shuffle = check_flag("shuffle", shuffle)
        self.drop_last = check_flag("drop_last", drop_last)
        self.seed = check_count("seed", seed)
        self.epoch = 0  # for set_epoch()/iteration, as in PyTorch
        if self.drop_last and self.dataset_size < self.num_replicas:
            raise ValueError(
                f"drop_last=True with {self.dataset_size} examples and {self.num_replicas} "
                "ranks leaves every rank nothing: use fewer ranks or drop_last=False"
            )

    @property
    def num_samples(self) -> int:
        """How many examples each rank reads per epoch."""
        n, r = self.dataset_size, self.num_replicas
        if self.drop_last:
            return n // r  # drop the tail that would not split evenly
        return math.ceil(n / r)  # pad by repeating the first examples

    @property
    def total_size(self) -> int:
        return self.num_samples * self.num_replicas

    def __len__(self) -> int:
        return self.num_samples

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's examples for `epoch`, in reading order (int64); deterministic in epoch."""
        epoch = check_count("epoch", epoch)
        if self.shuffle:
            order = np.random.default_rng(self.seed + epoch).permutation(self.dataset_size)
        else:
            order = np.arange(self.dataset_size)
        if self.total_size > len(order):  # pad: repeat from the start, as often as needed
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        return order[self.rank :: self.num_replicas].astype(np.int64)

    # PyTorch's way: set the epoch, then iterate.
    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_count("epoch", epoch)

    def __iter__(self):
        return iter(self.indices(self.epoch).tolist())

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """What fixes the order of every epoch (rank and world size are not saved: a run may
        resume on a different number of ranks, and the shards still cover each epoch)."""
        return {
            "seed": self.seed,
            "dataset_size": self.dataset_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def check_state_dict(self, state) -> dict:
        """Check `state` against this sampler (changes nothing); returns it prepared."""
        if not isinstance(state, dict):
            raise TypeError(f"a DistributedSampler state is a dict, not {type(state).__name__}")
        check_state_keys("the DistributedSampler", set(self.state_dict()), state)
        prepared = {
            "seed": check_count("the saved seed", state["seed"]),
            "dataset_size": check_count("the saved dataset_size", state["dataset_size"], 1),
            "shuffle": check_flag("the saved shuffle", state["shuffle"]),
            "drop_last": check_flag("the saved drop_last", state["drop_last"]),
        }
        for key in ("dataset_size", "shuffle", "drop_last"):
            if prepared[key] != getattr(self, key):
                raise ValueError(
                    f"the DistributedSampler was saved with {key}={prepared[key]}, this one "
                    f"has {key}={getattr(self, key)}: build it as in the run that saved it"
                )
        return prepared

    def apply_state_dict(self, prepared: dict) -> None:
        self.seed = prepared["seed"]

    def load_state_dict(self, state) -> None:
        self.apply_state_dict(self.check_state_dict(state))

    def __repr__(self) -> str:
        return (
            f"DistributedSampler({self.dataset_size}, num_replicas={self.num_replicas}, "
            f"rank={self.rank}, shuffle={self.shuffle}, seed={self.seed}, "
            f"drop_last={self.drop_last})"
        )
