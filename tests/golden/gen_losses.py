"""PyTorch's losses: outputs and input gradients for every loss, option and reduction.

CASES (read by tests/test_losses.py too, so both sides run the same calls) maps a case name
to (function name in torch.nn.functional / minigrad.nn.functional, keyword arguments, kind
of data). Each case stores, in float64:

    data_<kind>/input, /target, /weight    the inputs, one copy per kind of data
    <case>/out, <case>/grad                PyTorch's loss and d(sum(g * loss)) / d input,
                                           g = cotangent(loss shape), fixed numbers
"""

from __future__ import annotations

import numpy as np

N, C = 6, 5
REDUCTIONS = ("mean", "sum", "none")


def _cases() -> dict:
    cases = {}
    classification = {
        "plain": {},
        "weight": {"use_weight": True},
        "ignore": {"ignore": True},
        "weight_ignore": {"use_weight": True, "ignore": True},
        "ignore_in_range": {"ignore_index": 1},
    }
    for reduction in REDUCTIONS:
        for option, kwargs in classification.items():
            for fn in ("cross_entropy", "nll_loss"):
                cases[f"{fn}_{option}_{reduction}"] = (
                    fn,
                    {**kwargs, "reduction": reduction},
                    "classes",
                )
        smoothing = {
            "smooth": {"label_smoothing": 0.1},
            "smooth_weight_ignore": {"label_smoothing": 0.2, "use_weight": True, "ignore": True},
        }
        for option, kwargs in smoothing.items():
            cases[f"cross_entropy_{option}_{reduction}"] = (
                "cross_entropy", {**kwargs, "reduction": reduction}, "classes"
            )  # fmt: skip
        soft = {
            "soft": {},
            "soft_weight_smooth": {"use_weight": True, "label_smoothing": 0.1},
        }
        for option, kwargs in soft.items():
            cases[f"cross_entropy_{option}_{reduction}"] = (
                "cross_entropy", {**kwargs, "reduction": reduction}, "probabilities"
            )  # fmt: skip
        cases[f"cross_entropy_all_ignored_{reduction}"] = (
            "cross_entropy", {"reduction": reduction, "label_smoothing": 0.1}, "all_ignored"
        )  # fmt: skip
        cases[f"cross_entropy_empty_{reduction}"] = (
            "cross_entropy",
            {"reduction": reduction},
            "empty",
        )
        cases[f"binary_cross_entropy_{reduction}"] = (
            "binary_cross_entropy", {"reduction": reduction}, "probs"
        )  # fmt: skip
        cases[f"binary_cross_entropy_weight_{reduction}"] = (
            "binary_cross_entropy", {"reduction": reduction, "use_weight": True}, "probs"
        )  # fmt: skip
        cases[f"l1_loss_{reduction}"] = ("l1_loss", {"reduction": reduction}, "regression")
        cases[f"mse_loss_{reduction}"] = ("mse_loss", {"reduction": reduction}, "regression")
        for beta in (1.0, 0.5, 0.0):
            cases[f"smooth_l1_loss_beta{beta}_{reduction}"] = (
                "smooth_l1_loss", {"reduction": reduction, "beta": beta}, "regression"
            )  # fmt: skip
        for delta in (1.0, 2.5):
            cases[f"huber_loss_delta{delta}_{reduction}"] = (
                "huber_loss", {"reduction": reduction, "delta": delta}, "regression"
            )  # fmt: skip
    for reduction in ("mean", "batchmean", "sum", "none"):
        for log_target in (False, True):
            cases[f"kl_div_log_target{log_target}_{reduction}"] = (
                "kl_div", {"reduction": reduction, "log_target": log_target}, "kl"
            )  # fmt: skip
    return cases


CASES = _cases()


def make_data(kind: str, rng: np.random.Generator) -> dict:
    """Inputs for one case: {"input", "target", "weight"} as float64/int64 arrays."""
    weight = rng.uniform(0.2, 2.0, C)
    if kind in ("classes", "all_ignored", "empty"):
        n = 0 if kind == "empty" else N
        x = rng.standard_normal((n, C)) * 2
        t = rng.integers(0, C, n)
        if kind == "all_ignored":
            t[:] = -100
        return {"input": x, "target": t, "weight": weight}
    if kind == "probabilities":
        x = rng.standard_normal((N, C)) * 2
        q = rng.uniform(0, 1, (N, C))
        q[0, 1] = 0.0  # a zero probability in the target
        return {"input": x, "target": q / q.sum(axis=1, keepdims=True), "weight": weight}
    if kind == "probs":
        p = rng.uniform(0.01, 0.99, (N, 3))
        p[0, 0], p[1, 1] = 0.0, 1.0  # log 0 is clamped at -100
        y = rng.uniform(0, 1, (N, 3))
        y[2, 2] = 1.0
        return {"input": p, "target": y, "weight": rng.uniform(0.2, 2.0, 3)}
    if kind == "regression":
        x = rng.standard_normal((N, 3)) * 2
        return {"input": x, "target": rng.standard_normal((N, 3)), "weight": weight}
    if kind == "kl":
        logq = np.log(rng.dirichlet(np.ones(C), N))
        p = rng.dirichlet(np.ones(C), N)
        p[0, 2] = 0.0  # 0 * log 0 counts as 0
        return {"input": logq, "target": p, "weight": weight}
    raise ValueError(kind)


def torch_call(torch, fn: str, kwargs: dict, data: dict, x):
    """Call torch.nn.functional.<fn> on input x with the case's arguments."""
    kwargs = dict(kwargs)
    target = torch.from_numpy(data["target"])
    if kwargs.pop("use_weight", False):
        kwargs["weight"] = torch.from_numpy(data["weight"])
    if kwargs.pop("ignore", False):
        target = target.clone()
        target[[1, 4]] = -100
    if fn == "nll_loss":
        x = torch.log_softmax(x, dim=1)
    return getattr(torch.nn.functional, fn)(x, target, **kwargs)


def cotangent(shape: tuple) -> np.ndarray:
    """The upstream gradient g: fixed numbers in [0.5, 1.5] of the loss's shape."""
    size = int(np.prod(shape))
    return np.linspace(0.5, 1.5, size).reshape(shape) if size else np.zeros(shape)


def case_data(kind: str) -> dict:
    """The same inputs for every case of a kind (one copy in the file)."""
    return make_data(kind, np.random.default_rng(sorted(KINDS).index(kind)))


KINDS = sorted({kind for _, _, kind in CASES.values()})


def generate() -> dict:
    import torch

    out = {}
    for kind in KINDS:
        out.update({f"data_{kind}/{key}": value for key, value in case_data(kind).items()})
    for name, (fn, kwargs, kind) in CASES.items():
        data = case_data(kind)
        x = torch.tensor(data["input"], requires_grad=True)
        loss = torch_call(torch, fn, kwargs, data, x)
        g = torch.from_numpy(cotangent(tuple(loss.shape)))
        (grad,) = torch.autograd.grad(loss, x, g)
        out[f"{name}/out"] = loss.detach().numpy()
        out[f"{name}/grad"] = grad.numpy()
    return out
