"""to_dot: the graph behind a tensor as Graphviz DOT text, to see what backward() will walk.

    >>> x = mg.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> print(to_dot((x * x).sum()))          # paste into `dot -Tsvg` or an online viewer

Each tensor is a box (its name if it has one, its shape and dtype); each op is an ellipse
named after the op that made the tensor below it (`tensor._op`). Edges run
input tensor -> op -> result, one edge per input slot, so `x * x` shows two arrows from x.
Only the text is produced: no Graphviz install is needed.
"""

from __future__ import annotations

from .tensor import Tensor


def _quote(text: str) -> str:
    """A DOT string literal; a newline becomes DOT's \\n line break."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _tensor_label(t: Tensor) -> str:
    shape = "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"
    details = f"{shape} {t.dtype}"
    return f"{t.name}\n{details}" if t.name else details


def to_dot(tensor: Tensor) -> str:
    """DOT text of every tensor and op that `tensor` was computed from.

    Walks the graph with an explicit stack (no recursion), so a chain 10,000 ops deep works.
    Nodes are written in creation order (by id), so the text is the same on every call.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot needs a Tensor, got {type(tensor).__name__}")
    seen: dict[int, Tensor] = {}
    stack = [tensor]
    while stack:
        t = stack.pop()
        if t.id in seen:
            continue
        seen[t.id] = t
        stack.extend(p for p in t._parents if p.id not in seen)

    lines = ["digraph minigrad {", "  rankdir=LR;", "  node [fontname=monospace];"]
    for t in sorted(seen.values(), key=lambda t: t.id):
        style = ', style=filled, fillcolor="#ddeeff"' if t.is_leaf and t.requires_grad else ""
        lines.append(f"  t{t.id} [shape=box, label={_quote(_tensor_label(t))}{style}];")
        if t._parents:
            lines.append(f"  op{t.id} [shape=ellipse, label={_quote(t._op or '?')}];")
            lines.extend(f"  t{p.id} -> op{t.id};" for p in t._parents)
            lines.append(f"  op{t.id} -> t{t.id};")
    lines.append("}")
    return "\n".join(lines) + "\n"
