"""Trainer: the training step (loss, backward, clip, step) and a small fit() loop around it.

    trainer = Trainer(opt_w, opt_b, grad_clip=1.0)
    for xb, yb in loader:
        trainer.train_step(lambda: cross_entropy(model(xb), yb), batch_size=len(yb))
    print(trainer.epoch_avg_loss())

or, all in one:

    history = trainer.fit(model, loader, epochs=10, loss_fn=cross_entropy,
                          validate=lambda: {"val_acc": accuracy(model, X_val, y_val)})

A two-hour run survives a crash: with checkpoint_dir, fit saves a checkpoint at each epoch's
end, and running the same script again resumes from the newest good one:

    trainer.fit(model, loader, epochs=100, loss_fn=cross_entropy, checkpoint_dir="runs/mlp")

Resuming says what it did: it prints (and keeps in `trainer.resumed`) the file and epoch it
resumed from, how many epochs are left to train (0 when the run is already complete), and
which hyperparameters in the checkpoint differ from those passed now (the checkpoint's win).

The running loss stays on the loss's device (a 0-d array): train_step never waits for the
GPU; epoch_avg_loss() reads it once per epoch. That read is also where fit() notices a loss
that became NaN or infinite: it stops there, naming the epoch (stop_on_nonfinite=False trains
on).

Gradient accumulation (accumulate=k): the gradients of k micro-batches are summed, weighted
by batch_size when given, and divided by the total weight before the optimizers step, so
that with mean losses k micro-batches give the step of the one large batch.

The Trainer does not know minigrad.nn: a model is anything callable, and its train()/eval()
are called around training and validation when it has them.
"""

from __future__ import annotations

import math
import numbers
import sys

from .. import backend
from ..checks import check_count, check_flag, check_number, check_state_keys
from ..gradients import GradientStore
from ..tensor import Tensor, no_grad
from .clip import clip_grad_norm
from .optimizer import Optimizer
from .plateau import ReduceLROnPlateau

SCHEDULER_INTERVALS = ("epoch", "step")


class Trainer:
    """Trainer(*optimizers, grad_clip=None, accumulate=1, process_group=None, cuda_graph=False)

    optimizers: one or more optimizers over disjoint parameters, all stepped on each step.
    grad_clip: clip the global gradient norm of their parameters to this (no GPU sync: the
        non-finite check is off, see clip_grad_norm).
    accumulate: step the optimizers every `accumulate` calls of train_step.
    process_group: for data-parallel training (minigrad.distributed): the gradients are
        averaged over the ranks before each step, epoch_avg_loss() is the average over every
        rank's examples, and only rank 0 writes fit()'s checkpoints.
    cuda_graph: fit() records its whole step (forward, loss, backward, clipping, every
        optimizer, the running loss) as a CUDA graph on the first batch of each shape and
        replays it for the others (GPU only; see minigrad/cuda/graphs.py and
        docs/cuda_graphs.md). fit(..., cuda_graph=...) overrides it for one call.

    Attributes: epoch (epochs completed), history (one dict per epoch of fit()),
    optimizer_steps (how many times the optimizers stepped), resumed (what the last fit()
    resumed from a checkpoint, or None; see fit).
    """

    def __init__(
        self,
        *optimizers: Optimizer,
        grad_clip: float | None = None,
        accumulate=1,
        process_group=None,
        cuda_graph: bool = False,
    ):
        if len(optimizers) == 1 and isinstance(optimizers[0], (list, tuple)):
            raise TypeError("pass the optimizers as separate arguments: Trainer(opt_w, opt_b)")
        if not optimizers:
            raise ValueError("a Trainer needs at least one optimizer")
        for opt in optimizers:
            if not isinstance(opt, Optimizer):
                raise TypeError(f"Trainer takes optimizers, got a {type(opt).__name__}")
        if len({id(opt) for opt in optimizers}) != len(optimizers):
            raise ValueError("the same optimizer was given twice: it would step twice")
        if grad_clip is not None:
            grad_clip = check_number("grad_clip", grad_clip, low=0.0)
            if grad_clip == 0:
                raise ValueError("grad_clip must be > 0, or None for no clipping")
        accumulate = check_count("accumulate", accumulate, low=1)
        cuda_graph = check_flag("cuda_graph", cuda_graph)
        self.cuda_graph = _check_cuda_graph(cuda_graph, accumulate, process_group)
        self._graph = None  # fit()'s CapturedStep, and the running-loss sum its replays add to
        self._graph_loss_sum = None
        self.optimizers = list(optimizers)
        self.grad_clip = grad_clip
        self.accumulate = accumulate
        self.epoch = 0
        self.history: list[dict] = []
        self.optimizer_steps = 0
        self.resumed: dict | None = None
        self.process_group = process_group
        self._params = [p for opt in self.optimizers for p in opt.params]
        self._reset_epoch()
        self._reset_accumulation()

    # ------------------------------------------------------------ one step
    def train_step(self, closure, batch_size: int | float | None = None) -> Tensor:
        """loss = closure(); backward; (accumulate;) clip; step every optimizer. Returns loss.

        batch_size: the number of examples behind this loss; it weights the loss in
        epoch_avg_loss() (and the gradients in accumulation), so that a short last batch
        counts for what it is. Without it every step weighs 1.
        """
        weight = 1.0 if batch_size is None else check_number("batch_size", batch_size, low=0.0)
        if weight == 0:
            raise ValueError("batch_size must be > 0")
        loss = closure()
        if not isinstance(loss, Tensor):
            raise TypeError(f"the closure must return the loss tensor, got {type(loss).__name__}")
        if loss.size != 1:
            raise ValueError(
                f"the loss must have one element, got shape {loss.shape}: reduce it "
                "(e.g. .mean()) in the closure"
            )
        if not loss.requires_grad:
            raise ValueError(
                "the loss does not depend on any parameter that requires gradients "
                "(was it computed under no_grad(), or from detached tensors?)"
            )
        grads = loss.backward()
        if self.accumulate == 1:
            self._step(grads)
        else:
            self._accumulate(grads, weight)
            if self._pending_count == self.accumulate:
                self.flush()
        self._record_loss(loss, weight)
        return loss

    def flush(self) -> bool:
        """Step with the micro-batches accumulated so far, if any; True if it stepped.

        fit() and epoch_avg_loss() call it at the end of an epoch, so that the last
        micro-batches of an epoch are not carried into the next one.
        """
        if self._pending_count == 0:
            return False
        grads = self._pending
        scale = 1.0 / self._pending_weight
        for g in grads.values():
            g *= scale
        self._reset_accumulation()
        self._step(grads)
        return True

    def _accumulate(self, grads: GradientStore, weight: float) -> None:
        # The arrays drained from a fresh store are ours: scale and add them in place.
        for p, g in zip(self._params, grads.drain(self._params)):
            if g is None:
                continue
            if weight != 1:
                g *= weight
            total = self._pending.get(p)
            if total is None:
                self._pending[p] = g
            else:
                total += g
        self._pending_count += 1
        self._pending_weight += weight

    def _step(self, grads: GradientStore) -> None:
        if self.process_group is not None:  # data-parallel: every rank steps with the average
            self.process_group.average_gradients(grads, self._params)
        # Every optimizer checks its gradients before any clips or steps: a refused step
        # leaves no optimizer half a step ahead of the others.
        checked = [opt._check_step(grads) for opt in self.optimizers]
        if self.grad_clip is not None:
            clip_grad_norm(grads, self.grad_clip, params=self._params, error_if_nonfinite=False)
        for opt, indices in zip(self.optimizers, checked):
            opt._apply_step(grads, indices)
        self.optimizer_steps += 1

    def _reset_accumulation(self) -> None:
        self._pending = GradientStore()
        self._pending_count = 0
        self._pending_weight = 0.0

    def _graphed_step(self, model_or_step, loss_fn, batch) -> None:
        """One step of fit(cuda_graph=True): a replay of the recorded step (the first batch of
        each shape runs eagerly and is recorded; see minigrad/cuda/graphs.py)."""
        inputs = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        steps = self.optimizer_steps
        key = self._graph.step_fn.key if self._graph is not None else (None, None)
        if key[0] is not model_or_step or key[1] is not loss_fn:
            from .. import cuda  # cuda/graphs.py sits above optim: imported on use

            if self._graph_loss_sum is None:
                self._graph_loss_sum = backend.xp_for("gpu").zeros((), dtype="float64")
            step = self._graph_step_fn(model_or_step, loss_fn)
            self._graph = cuda.graph(step, *inputs)
        else:
            self._graph(*inputs)
        # Host bookkeeping a replay cannot do (the warm-up and the capture each counted once).
        self.optimizer_steps = steps + 1
        self._loss_weight += float(_batch_size(batch) or 1)

    def _graph_step_fn(self, model_or_step, loss_fn):
        """The step that fit(cuda_graph=True) records: loss, backward, clip, step, running loss."""

        def step(*inputs):
            batch = inputs if len(inputs) > 1 else inputs[0]
            loss = _closure(model_or_step, loss_fn, batch)()
            weight = float(_batch_size(batch) or 1)  # fixed per input shape, as the graph is
            grads = loss.backward()
            self._step(grads)
            value = loss.data.reshape(()).astype("float64")
            value *= weight
            self._graph_loss_sum += value
            return loss

        step.key = (model_or_step, loss_fn)
        return step

    # ------------------------------------------------------------ the running loss
    def _record_loss(self, loss: Tensor, weight: float) -> None:
        # A 0-d float64 array on the loss's device: adding to it never waits for the GPU.
        # (float64, so that thousands of small additions do not lose the average's digits.)
        value = loss.data.reshape(()).astype("float64")
        value *= weight
        if self._loss_sum is None:
            self._loss_sum = value
        else:
            self._loss_sum += value
        self._loss_weight += weight

    def _reset_epoch(self, carried_sum: float = 0.0, carried_weight: float = 0.0) -> None:
        # carried_*: the running loss of this epoch's steps before a checkpoint was loaded.
        self._loss_sum = None
        self._loss_weight = carried_weight
        self._loss_carried = carried_sum
        if self._graph_loss_sum is not None:
            self._graph_loss_sum.fill(0)  # in place: the graph adds to this very array

    def _epoch_loss_sum(self) -> float:
        """The weighted sum of this epoch's losses, as a float (reads the device)."""
        live = 0.0 if self._loss_sum is None else float(self._loss_sum)
        if self._graph_loss_sum is not None:
            live += float(self._graph_loss_sum)
        return self._loss_carried + live

    def epoch_avg_loss(self) -> float:
        """End the epoch: the average loss of its train_steps, as a float (weighted by
        batch_size where given). Steps with any micro-batches still accumulated, counts the
        epoch, and starts a new one. This reads the loss from the device: one sync per epoch.
        """
        if self._loss_weight == 0:
            raise RuntimeError("no train_step() since the epoch started: there is no loss yet")
        self.flush()
        loss_sum, weight = self._epoch_loss_sum(), self._loss_weight
        if self.process_group is not None:  # the average over every rank's examples
            loss_sum, weight = self.process_group.sum_over_ranks(loss_sum, weight)
        average = loss_sum / weight
        self._reset_epoch()
        self.epoch += 1
        return average

    # ------------------------------------------------------------ the loop
    def fit(
        self,
        model_or_step,
        loader,
        epochs: int,
        loss_fn=None,
        validate=None,
        progress: bool | None = None,
        on_epoch_end=None,
        checkpoint_dir=None,
        resume: bool = True,
        keep_last: int | None = 3,
        schedulers=(),
        scheduler_interval: str = "epoch",
        stop_on_nonfinite: bool = True,
        cuda_graph: bool | None = None,
    ) -> list[dict]:
        """Train for `epochs` passes over `loader`; returns (and extends) self.history.

        model_or_step: with loss_fn, a model called as loss_fn(model(x), y) on batches (x, y);
            without, a step function called as step(*batch) that returns the loss tensor.
        loader: re-iterable batches (a list, or a data loader), read once per epoch.
        validate: called with no arguments after each epoch, under no_grad() and with the
            model in eval() mode; returns a dict of metrics (or one number, "val_loss").
        progress: a tqdm bar per epoch; by default only when stdout is a terminal
            (no bar, silently, if tqdm is not installed).
        on_epoch_end: called with each epoch's record; returning True stops training.
        schedulers: learning-rate schedulers that fit steps (do not step them yourself too),
            and saves and restores with the checkpoints.
        scheduler_interval: "epoch" (default) steps them once at the end of each epoch, as in
            PyTorch's examples (StepLR(step_size=30) means 30 epochs); "step" steps them after
            each optimizer step, for schedules counted in batches (warmup, one-cycle).
            A ReduceLROnPlateau is stepped per epoch with the epoch's "val_loss" (from
            validate) when there is one, else with its "train_loss".
        stop_on_nonfinite: stop with a FloatingPointError naming the epoch when its average
            loss is NaN or infinite (checked where the loss is read anyway, once per epoch;
            nothing is saved for that epoch). False trains on.
        cuda_graph: replay each step as a CUDA graph (see the class docstring); None takes
            the Trainer's setting.
        checkpoint_dir: save a checkpoint there at the end of each epoch (epoch-<n>.npz:
            the model, the optimizers, this trainer, `schedulers`, the loader's shuffling
            state when it has one, and the random generator), keeping the newest
            `keep_last` (None keeps all). Needs a model with state_dict().
        resume: with checkpoint_dir, first load the newest good checkpoint there (a damaged
            one is skipped with a warning), so that running the same script again after a
            crash continues where it stopped. It prints what it resumed and keeps it in
            self.resumed: {"path", "restored", "epoch", "target_epoch", "epochs_left",
            "changed"}, where "restored" names the parts loaded (model, optimizers, ...) and
            "changed" lists the hyperparameters whose saved values replaced those passed now.

        Each record: {"epoch": n, "train_loss": ..., **validate()}.

        fit trains until self.epoch reaches (self.epoch before resuming) + epochs: a fresh
        Trainer resumed at epoch 7 of fit(..., epochs=20) trains epochs 8 to 20, and one
        resumed at epoch 20 trains none (and says so).
        """
        epochs = check_count("epochs", epochs, low=1)
        if not callable(model_or_step):
            raise TypeError(f"fit() needs a model or a step function, got {model_or_step!r}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
        schedulers = _checked_schedulers(schedulers, scheduler_interval)
        stop_on_nonfinite = check_flag("stop_on_nonfinite", stop_on_nonfinite)
        graphed = self.cuda_graph if cuda_graph is None else check_flag("cuda_graph", cuda_graph)
        _check_cuda_graph(graphed, self.accumulate, self.process_group)
        tqdm = _tqdm_or_none(progress)
        last_epoch = self.epoch + epochs
        saving = None
        if checkpoint_dir is not None:
            saving = self._checkpointing(model_or_step, loader, schedulers, keep_last)
            if resume:
                self._resume(saving, checkpoint_dir, schedulers, last_epoch)
        while self.epoch < last_epoch:
            number = self.epoch + 1
            _set_mode(model_or_step, "train")
            total = len(loader) if hasattr(loader, "__len__") else None
            bar = tqdm(total=total, desc=f"epoch {number}/{last_epoch}") if tqdm else None
            batches = 0
            for batch in loader:
                steps_before = self.optimizer_steps
                if graphed:
                    self._graphed_step(model_or_step, loss_fn, batch)
                else:
                    closure = _closure(model_or_step, loss_fn, batch)
                    self.train_step(closure, batch_size=_batch_size(batch))
                if scheduler_interval == "step" and self.optimizer_steps != steps_before:
                    _step_all(schedulers)
                batches += 1
                if bar is not None:
                    bar.update(1)
            if batches == 0:
                if bar is not None:
                    bar.close()
                raise ValueError(
                    f"the loader gave no batches in epoch {number}: pass something that can "
                    "be iterated again each epoch (a list or a data loader, not a generator)"
                )
            steps_before = self.optimizer_steps
            record = {"epoch": number, "train_loss": self.epoch_avg_loss()}  # may flush a step
            if scheduler_interval == "step" and self.optimizer_steps != steps_before:
                _step_all(schedulers)
            if stop_on_nonfinite and not math.isfinite(record["train_loss"]):
                self.history.append(record)
                if bar is not None:
                    bar.close()
                raise FloatingPointError(_nonfinite_message(record, checkpoint_dir))
            if validate is not None:
                record.update(_run_validation(model_or_step, validate))
            if scheduler_interval == "epoch":
                _step_all(schedulers, record)
            self.history.append(record)
            if bar is not None:
                bar.set_postfix({k: v for k, v in record.items() if k != "epoch"})
                bar.close()
            stop = on_epoch_end is not None and on_epoch_end(record) is True
            if saving is not None:
                saving.save_epoch(checkpoint_dir)
            if stop:
                break
        return self.history

    def _resume(self, saving, directory, schedulers, last_epoch: int) -> None:
        """Load the newest checkpoint in `directory`, then print and keep what was resumed."""
        before = _hyperparameters(self.optimizers, schedulers)
        info = saving.load_latest(directory)
        if info is None:
            self.resumed = None
            return
        after = _hyperparameters(self.optimizers, schedulers)
        changed = {
            name: {"checkpoint": after[name], "passed": value}
            for name, value in before.items()
            if after.get(name) != value
        }
        self.resumed = {
            "path": str(info.get("path")),
            "restored": _restored_parts(info.get("contents", {})),
            "epoch": self.epoch,
            "target_epoch": last_epoch,
            "epochs_left": max(0, last_epoch - self.epoch),
            "changed": changed,
        }
        print(_resume_message(self.resumed), flush=True)

    def _checkpointing(self, model, loader, schedulers, keep_last) -> _Checkpointing:
        """Check fit's checkpoint arguments and gather what each checkpoint holds."""
        # mg.load restores the model with the state protocol, so ask for it now, not at resume
        if not all(hasattr(model, m) for m in _STATE_PROTOCOL):
            raise TypeError(
                "checkpoint_dir needs the model's parameters: pass a model with "
                "state_dict(), check_state_dict() and apply_state_dict() (an nn.Module) "
                f"and loss_fn, not {type(model).__name__}"
            )
        if keep_last is not None:
            keep_last = check_count("keep_last (or None: keep all)", keep_last, low=1)
        # Saved only if mg.load can restore it at resume, which needs the state protocol.
        stateful = all(hasattr(loader, method) for method in _STATE_PROTOCOL)
        objects = {
            "model": model,
            "optimizers": self.optimizers,
            "trainer": self,
            "schedulers": schedulers,
            "loaders": [loader] if stateful else [],
        }
        return _Checkpointing(objects, keep_last)

    # ------------------------------------------------------------ saving and loading
    def state_dict(self) -> dict:
        """{"epoch", "optimizer_steps", "history", "loss_sum", "loss_weight"}: plain Python
        values (JSON-friendly).

        loss_sum and loss_weight are the running loss of the epoch in progress (0 at an
        epoch's end), so that a checkpoint saved mid-epoch resumes with the same epoch
        average; reading loss_sum waits for the device once. The optimizers save their own
        state (opt.state_dict()). Micro-batches accumulated but not yet stepped are not
        saved: with some pending, state_dict() refuses.
        """
        if self._pending_count:
            raise RuntimeError(
                f"{self._pending_count} of {self.accumulate} accumulated micro-batches have not "
                "been stepped yet, and their gradients cannot be saved: save right after an "
                f"optimizer step (every {self.accumulate} train_step() calls) or at an "
                "epoch's end"
            )
        return {
            "epoch": self.epoch,
            "optimizer_steps": self.optimizer_steps,
            "history": [dict(record) for record in self.history],
            "loss_sum": self._epoch_loss_sum(),
            "loss_weight": self._loss_weight,
        }

    def check_state_dict(self, state: dict) -> dict:
        """Check a state from state_dict(); return it prepared for apply_state_dict (a new
        dict: the caller's is never kept). Raises naming the problem; changes nothing.
        A state without loss_sum/loss_weight (saved before they existed) is an epoch's end."""
        if not isinstance(state, dict):
            raise TypeError(f"a Trainer state is a dict, not a {type(state).__name__}")
        state = {"loss_sum": 0.0, "loss_weight": 0.0, **state}
        expected = {"epoch", "optimizer_steps", "history", "loss_sum", "loss_weight"}
        check_state_keys("the Trainer", expected, state)
        history = state["history"]
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise ValueError("the Trainer state's 'history' must be a list of dicts")
        return {
            "epoch": check_count("the Trainer state's 'epoch'", state["epoch"]),
            "optimizer_steps": check_count(
                "the Trainer state's 'optimizer_steps'", state["optimizer_steps"]
            ),
            "history": [dict(record) for record in history],
            "loss_sum": check_number("the Trainer state's 'loss_sum'", state["loss_sum"]),
            "loss_weight": check_number(
                "the Trainer state's 'loss_weight'", state["loss_weight"], low=0.0
            ),
        }

    def apply_state_dict(self, prepared: dict) -> None:
        """Assign a state that check_state_dict() returned (cannot fail). Micro-batches
        accumulated since are dropped; the running loss becomes the saved one."""
        self.epoch = prepared["epoch"]
        self.optimizer_steps = prepared["optimizer_steps"]
        self.history = prepared["history"]
        self._reset_epoch(prepared["loss_sum"], prepared["loss_weight"])
        self._reset_accumulation()

    def load_state_dict(self, state: dict) -> None:
        """check_state_dict(state), then apply_state_dict: all or nothing."""
        self.apply_state_dict(self.check_state_dict(state))

    def __repr__(self) -> str:
        return (
            f"Trainer({', '.join(map(repr, self.optimizers))}, grad_clip={self.grad_clip}, "
            f"accumulate={self.accumulate}, epoch={self.epoch})"
        )


# ---------------------------------------------------------------- helpers of fit()


class _Checkpointing:
    """fit()'s link to minigrad.checkpoint: which objects to save, and how many files to keep.

    checkpoint.py lives a floor above this file (floor 6), so it is imported here, when a
    checkpoint_dir is given, not when minigrad.optim is imported: the optimizers never
    depend on it, and the module-level imports keep pointing down.
    """

    def __init__(self, objects: dict, keep_last: int | None):
        from .. import checkpoint  # floor 6, imported on use: see the docstring

        self.checkpoint = checkpoint
        self.objects = objects
        self.keep_last = keep_last

    def load_latest(self, directory) -> dict | None:
        return self.checkpoint.load_latest(directory, **self.objects)

    def save_epoch(self, directory):
        trainer = self.objects["trainer"]
        group = trainer.process_group
        if group is not None and group.rank != 0:
            return None  # data-parallel: every rank holds the same state; rank 0 writes it
        return self.checkpoint.save_epoch(
            directory,
            trainer.epoch,
            keep_last=self.keep_last,
            extra={"epoch": trainer.epoch},
            **self.objects,
        )


_STATE_PROTOCOL = ("state_dict", "check_state_dict", "apply_state_dict")


def _checked_schedulers(schedulers, interval) -> list:
    if interval not in SCHEDULER_INTERVALS:
        raise ValueError(
            f"scheduler_interval must be 'epoch' or 'step', got {interval!r}: 'epoch' steps "
            "the schedulers once per epoch, 'step' after every optimizer step"
        )
    schedulers = [schedulers] if hasattr(schedulers, "state_dict") else list(schedulers)
    for i, sched in enumerate(schedulers):
        if not (hasattr(sched, "step") and hasattr(sched, "state_dict")):
            raise TypeError(f"schedulers[{i}] is a {type(sched).__name__}, not a scheduler")
        if isinstance(sched, ReduceLROnPlateau) and interval != "epoch":
            raise ValueError(
                f"schedulers[{i}] is a ReduceLROnPlateau, which watches a metric measured once "
                "per epoch: use scheduler_interval='epoch' (or step it yourself in on_epoch_end)"
            )
    return schedulers


def _check_cuda_graph(graphed: bool, accumulate: int, process_group=None) -> bool:
    if graphed and accumulate != 1:
        raise ValueError(
            "cuda_graph=True records one optimizer step per batch: use accumulate=1 "
            "(or a larger batch), or cuda_graph=False to accumulate gradients"
        )
    if graphed and process_group is not None:
        raise ValueError(
            "cuda_graph=True cannot record a process group's all-reduce (it waits for the "
            "other ranks on the host): use cuda_graph=False for data-parallel training"
        )
    return graphed


def _step_all(schedulers, record: dict | None = None) -> None:
    """Step each scheduler; a ReduceLROnPlateau with the epoch's val_loss (else train_loss)."""
    for sched in schedulers:
        if isinstance(sched, ReduceLROnPlateau):
            sched.step(record.get("val_loss", record["train_loss"]))
        else:
            sched.step()


def _hyperparameters(optimizers, schedulers) -> dict:
    """{"optimizers[0].lr": 0.001, "schedulers[0].gamma": 0.5, ...}: what a resume may change.

    A scheduler's step count is progress, not a setting, and is left out."""
    found = {}
    for k, opt in enumerate(optimizers):
        for name, value in opt._hyperparameters().items():
            found[f"optimizers[{k}].{name}"] = value
    for k, sched in enumerate(schedulers):
        for name, value in sched.state_dict().items():
            if name != "last_epoch" and isinstance(value, (int, float, str)):
                found[f"schedulers[{k}].{name}"] = value
    return found


def _restored_parts(contents: dict) -> list[str]:
    """["model", "optimizers[0]", ...]: the parts a checkpoint's contents say it holds."""
    parts = []
    for name, value in contents.items():
        if value is True:
            parts.append({"rng": "random generator"}.get(name, name))
        elif isinstance(value, int) and not isinstance(value, bool):
            parts += [f"{name}[{k}]" for k in range(value)]
    return parts


def _resume_message(resumed: dict) -> str:
    lines = [f"fit: resumed from {resumed['path']} at epoch {resumed['epoch']}"]
    if resumed["epochs_left"] == 0:
        lines[0] += (
            f"; the run is already complete (it trains to epoch {resumed['target_epoch']}): "
            "0 epochs to train. Pass a larger epochs= to train on, or another checkpoint_dir "
            "to start again"
        )
    else:
        left = resumed["epochs_left"]
        lines[0] += f"; {left} epoch{'s' if left != 1 else ''} to train"
        lines[0] += f" (to epoch {resumed['target_epoch']})"
    if resumed["restored"]:
        lines.append(f"  restored: {', '.join(resumed['restored'])}")
    if resumed["changed"]:
        lines.append(
            "  the checkpoint's hyperparameters were kept over those passed now "
            "(to use new ones, start in another checkpoint_dir or set them after fit resumes):"
        )
        for name, values in resumed["changed"].items():
            lines.append(f"    {name} = {values['checkpoint']!r} (passed: {values['passed']!r})")
    return "\n".join(lines)


def _nonfinite_message(record: dict, checkpoint_dir) -> str:
    epoch = record["epoch"]
    text = f"the training loss of epoch {epoch} is {record['train_loss']}: training stopped"
    if checkpoint_dir is not None:
        text += f" (no checkpoint was saved for epoch {epoch}; the older ones are intact)"
    return (
        text + ". Lower the learning rate or clip the gradients (grad_clip=...); "
        "pass stop_on_nonfinite=False to train on regardless"
    )


def _closure(model_or_step, loss_fn, batch):
    """The closure that computes this batch's loss."""
    if loss_fn is not None:
        try:
            x, y = batch
        except (TypeError, ValueError):
            raise ValueError(
                "with loss_fn, each batch must be a pair (x, y); for other batches pass a "
                "step function instead of a model"
            ) from None
        return lambda: loss_fn(model_or_step(x), y)
    if isinstance(batch, (tuple, list)):
        return lambda: model_or_step(*batch)
    return lambda: model_or_step(batch)


def _batch_size(batch) -> int | None:
    """The number of examples in a batch: the length of its first array, if it has one."""
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] > 0:
        return int(shape[0])
    return None  # unknown: the step weighs 1


def _set_mode(model, mode: str) -> None:
    method = getattr(model, mode, None)
    if callable(method):
        method()


def _run_validation(model, validate) -> dict:
    _set_mode(model, "eval")
    try:
        with no_grad():
            result = validate()
    finally:
        _set_mode(model, "train")
    if result is None:
        return {}
    if isinstance(result, dict):
        return {key: _to_float(value) for key, value in result.items()}
    return {"val_loss": _to_float(result)}


def _to_float(value):
    """Metrics as plain floats (one device read per metric per epoch); others left as they are."""
    if isinstance(value, Tensor):
        value = value.item() if value.size == 1 else value
    elif hasattr(value, "item") and getattr(value, "size", 0) == 1:
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _tqdm_or_none(progress: bool | None):
    """tqdm's class when a progress bar is wanted and tqdm is installed, else None."""
    if progress is None:
        progress = sys.stdout.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm
