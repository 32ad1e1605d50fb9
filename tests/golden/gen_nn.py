"""PyTorch's numbers for the nn layers: convolution, pooling, normalization, embedding,
activations and attention (float64, small shapes).

Each case records the inputs, the output and the gradient of sum(out * gy) with respect to
every input, gy = upstream(out.shape) (fixed values, not stored). The case tables below are
plain data, read by the tests too (`from golden.gen_nn import CONV`), so a case is described
in one place.
"""

from __future__ import annotations

import numpy as np

# name: (input shape, out_channels, kernel, options of F.conv2d)
CONV = {
    "conv_basic": ((2, 2, 5, 4), 3, (3, 3), {}),
    "conv_stride2_pad1": ((1, 2, 7, 6), 3, (3, 3), {"stride": 2, "padding": 1}),
    "conv_1x1": ((2, 3, 4, 3), 2, (1, 1), {}),
    "conv_nonsquare": ((1, 2, 8, 5), 3, (3, 2), {"stride": (2, 1), "padding": (1, 0)}),
    "conv_dilation": ((1, 2, 7, 6), 2, (3, 3), {"dilation": (2, 1), "padding": 2}),
    "conv_groups": ((1, 4, 4, 4), 4, (3, 3), {"groups": 2, "padding": 1}),
    "conv_same": ((1, 2, 6, 7), 2, (4, 3), {"padding": "same"}),
    "conv_nobias": ((2, 1, 5, 5), 2, (2, 2), {"bias": False}),
}

# name: (function, input shape, keyword arguments)
POOL = {
    "maxpool_2": ("max_pool2d", (2, 2, 4, 4), {"kernel_size": 2}),
    "maxpool_3s2p1": ("max_pool2d", (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    "maxpool_dil_ceil": (
        "max_pool2d",
        (1, 2, 9, 7),
        {"kernel_size": (3, 2), "stride": (2, 1), "dilation": 2, "ceil_mode": True},
    ),
    "avgpool_2": ("avg_pool2d", (2, 2, 4, 4), {"kernel_size": 2}),
    "avgpool_3s2p1": ("avg_pool2d", (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    "avgpool_nopadcount_ceil": (
        "avg_pool2d",
        (1, 2, 8, 8),
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
    "adaptive_1": ("adaptive_avg_pool2d", (2, 2, 3, 4), {"output_size": 1}),
    "adaptive_3x2": ("adaptive_avg_pool2d", (1, 2, 7, 5), {"output_size": (3, 2)}),
}

# name: (layer, input shape, keyword arguments); three training steps, then one in eval mode,
# recorded as "<name>_steps/<field>" with a leading step axis
BATCHNORM = {
    "bn2d": ("BatchNorm2d", (3, 3, 2, 2), {}),
    "bn2d_cumulative": ("BatchNorm2d", (3, 2, 2, 2), {"momentum": None, "eps": 1e-3}),
    "bn1d": ("BatchNorm1d", (5, 3), {"momentum": 0.3}),
    "bn1d_seq_noaffine": ("BatchNorm1d", (2, 2, 4), {"affine": False}),
    "bn2d_untracked": ("BatchNorm2d", (3, 2, 2, 2), {"track_running_stats": False}),
}
BATCHNORM_STEPS = 3

# name: (input shape, normalized_shape, keyword arguments)
LAYERNORM = {
    "ln_last": ((3, 4, 5), (5,), {}),
    "ln_two_axes": ((2, 3, 4), (3, 4), {"eps": 1e-3}),
    "ln_noaffine": ((4, 6), (6,), {"elementwise_affine": False}),
    "ln_nobias": ((4, 6), (6,), {"bias": False}),
}

# name: (torch.nn.functional name, keyword arguments); inputs are ACTIVATION_X
ACTIVATIONS = {
    "gelu": ("gelu", {}),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}),
    "silu": ("silu", {}),
    "elu": ("elu", {"alpha": 0.5}),
    "softplus": ("softplus", {}),
    "softplus_beta_threshold": ("softplus", {"beta": 2.0, "threshold": 3.0}),
}
ACTIVATION_X = [-30.0, -6.0, -2.5, -1.0, -0.3, 0.2, 0.9, 1.3, 2.0, 4.0, 12.0, 30.0]

# name: (q shape, k/v length, keyword arguments; "mask" is made by the generator)
ATTENTION = {
    "sdpa_plain": ((2, 3, 4), 5, {}),
    "sdpa_causal": ((2, 2, 4, 3), 4, {"is_causal": True}),
    "sdpa_bool_mask": ((2, 4, 3), 5, {"mask": "bool", "scale": 0.3}),
    "sdpa_float_mask": ((1, 2, 4, 3), 5, {"mask": "float"}),
}
MHA_EMBED, MHA_HEADS = 6, 2


def upstream(shape) -> np.ndarray:
    """The upstream gradient gy of every case: fixed values, computed again by the tests, so
    the file does not store them (every entry of an .npz costs a few hundred bytes)."""
    return np.cos(0.7 * np.arange(int(np.prod(shape)))).reshape(shape) + 0.1


def _record(out, inputs: dict, rng) -> dict:
    """out, and grad.<name> of sum(out * gy), gy = upstream(out.shape), for every input that
    requires a gradient."""
    import torch

    gy = torch.tensor(upstream(tuple(out.shape)))
    needs = {k: v for k, v in inputs.items() if v.requires_grad}
    grads = torch.autograd.grad(out, list(needs.values()), gy)
    fields = {"out": out.detach().numpy()}
    fields.update({k: v.detach().numpy() for k, v in inputs.items()})
    fields.update({f"grad.{k}": g.numpy() for k, g in zip(needs, grads)})
    return fields


def generate() -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(0)
    arrays = {}

    def tensor(shape):
        return torch.tensor(rng.standard_normal(shape), requires_grad=True)

    def add(case, fields):
        arrays.update({f"{case}/{k}": np.asarray(v) for k, v in fields.items()})

    for name, (shape, oc, kernel, options) in CONV.items():
        options = dict(options)
        groups = options.get("groups", 1)
        inputs = {"x": tensor(shape), "weight": tensor((oc, shape[1] // groups) + kernel)}
        if options.pop("bias", True):
            inputs["bias"] = tensor((oc,))
        out = F.conv2d(inputs["x"], inputs["weight"], inputs.get("bias"), **options)
        add(name, _record(out, inputs, rng))

    for name, (fn, shape, options) in POOL.items():
        inputs = {"x": tensor(shape)}
        out = getattr(F, fn)(inputs["x"], **options)
        add(name, _record(out, inputs, rng))
    for name, (layer, shape, options) in BATCHNORM.items():
        bn = getattr(torch.nn, layer)(shape[1], **options)
        if bn.affine:  # weights other than 1 and 0, so that they show in the numbers
            with torch.no_grad():
                bn.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, shape[1])))
                bn.bias.copy_(torch.tensor(rng.standard_normal(shape[1])))
            add(
                f"{name}_params",
                {"weight": bn.weight.detach().numpy(), "bias": bn.bias.detach().numpy()},
            )
        steps = []  # one dict of fields per step, stacked below: field[step] is that step's
        for step in range(BATCHNORM_STEPS + 1):
            bn.train(step < BATCHNORM_STEPS)
            inputs = {"x": tensor(shape) * 2 + 1}
            params = {"weight": bn.weight, "bias": bn.bias} if bn.affine else {}
            fields = _record(bn(inputs["x"]), {**inputs, **params}, rng)
            fields.pop("weight", None), fields.pop("bias", None)
            if bn.track_running_stats:
                fields["running_mean"] = bn.running_mean.numpy().copy()
                fields["running_var"] = bn.running_var.numpy().copy()
                fields["num_batches_tracked"] = bn.num_batches_tracked.numpy().copy()
            steps.append(fields)
        add(f"{name}_steps", {k: np.stack([f[k] for f in steps]) for k in steps[0]})

    for name, (shape, normalized, options) in LAYERNORM.items():
        ln = torch.nn.LayerNorm(normalized, **options)
        inputs = {"x": tensor(shape)}
        if ln.weight is not None:
            with torch.no_grad():
                ln.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, normalized)))
            inputs["weight"] = ln.weight
        if ln.bias is not None:
            with torch.no_grad():
                ln.bias.copy_(torch.tensor(rng.standard_normal(normalized)))
            inputs["bias"] = ln.bias
        add(name, _record(ln(inputs["x"]), inputs, rng))

    for name, (fn, options) in ACTIVATIONS.items():
        x = torch.tensor(ACTIVATION_X, requires_grad=True)
        add(f"act_{name}", _record(getattr(F, fn)(x, **options), {"x": x}, rng))

    for name, (shape, source, options) in ATTENTION.items():
        options = dict(options)
        inputs = {
            "q": tensor(shape),
            "k": tensor(shape[:-2] + (source, shape[-1])),
            "v": tensor(shape[:-2] + (source, 2)),
        }
        extra = {}
        kind = options.pop("mask", None)
        if kind == "bool":
            keep = rng.random((shape[-2], source)) < 0.7
            keep[:, 0] = True  # every query keeps a key (an empty row is NaN)
            options["attn_mask"] = torch.tensor(keep)
            extra["mask"] = keep
        elif kind == "float":
            options["attn_mask"] = torch.tensor(rng.standard_normal((shape[-2], source)))
            extra["mask"] = options["attn_mask"].numpy()
        out = F.scaled_dot_product_attention(inputs["q"], inputs["k"], inputs["v"], **options)
        add(name, {**_record(out, inputs, rng), **extra})

    # MultiheadAttention: self-attention (batch_first, causal) and cross-attention (L, B, E)
    # with a key padding mask; parameters as PyTorch initialized them.
    for name, batch_first in (("mha_self_causal", True), ("mha_cross_padding", False)):
        mha = torch.nn.MultiheadAttention(MHA_EMBED, MHA_HEADS, batch_first=batch_first)
        with torch.no_grad():  # biases other than PyTorch's zeros, so that they show
            mha.in_proj_bias.copy_(torch.tensor(rng.standard_normal(3 * MHA_EMBED)))
            mha.out_proj.bias.copy_(torch.tensor(rng.standard_normal(MHA_EMBED)))
        params = dict(mha.named_parameters())
        fields = {f"param.{k}": v.detach().numpy().copy() for k, v in params.items()}
        if batch_first:
            x = tensor((2, 4, MHA_EMBED))
            causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
            out, weights = mha(x, x, x, attn_mask=causal)
            inputs = {"x": x}
        else:
            inputs = {"q": tensor((3, 2, MHA_EMBED)), "kv": tensor((5, 2, MHA_EMBED))}
            padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
            out, weights = mha(inputs["q"], inputs["kv"], inputs["kv"], key_padding_mask=padding)
            fields["key_padding_mask"] = padding.numpy()
        recorded = _record(out, {**inputs, **{f"param.{k}": v for k, v in params.items()}}, rng)
        add(name, {**recorded, **fields, "weights": weights.detach().numpy()})

    weight = tensor((6, 3))
    ids = np.array([[0, 2, 2], [5, 1, 2]])  # 2 repeats: its row sums three gradients
    for name, padding_idx in (("embedding", None), ("embedding_padding", 2)):
        out = F.embedding(torch.tensor(ids), weight, padding_idx=padding_idx)
        add(name, {**_record(out, {"weight": weight}, rng), "ids": ids})

    x = tensor((1, 2, 7, 6))
    _, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    add("maxpool_indices", {"x": x.detach().numpy(), "indices": indices.numpy()})
    return arrays
