"""GradientStore: what `loss.backward()` returns, a map from parameter to gradient array.

Gradients are values, not state hidden on tensors. The store is keyed by each parameter's
stable integer `id` (a process-wide counter), and the tensor itself is accepted as a key:

    grads = loss.backward()
    grads[w]            # the gradient array of w, same shape and dtype as w.data
    grads[w.id]         # the same
    opt.step(grads)     # the optimizer *drains* its own parameters' gradients out of the store

Every array in a store is its own (no two entries share memory), so an optimizer or
`clip_grad_norm` may change one in place without touching another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from . import backend


def _key(param) -> int:
    """The integer id of a parameter given as a tensor or as its id."""
    if type(param) is int:  # `type(...) is`, not isinstance: fast, and True is not an id
        return param
    key = getattr(param, "id", None)
    if type(key) is not int:
        raise TypeError(f"a GradientStore is keyed by tensors or their integer ids, not {param!r}")
    return key


def _describe(param) -> str:
    if isinstance(param, int):
        return f"parameter id={param}"
    name = getattr(param, "name", None)
    shape = getattr(param, "shape", None)
    label = f"parameter {name!r}" if name else "parameter"
    return f"{label} (id={param.id}, shape={shape})"


class GradientStore:
    """Parameter id -> gradient array (NumPy or CuPy, matching the parameter)."""

    __slots__ = ("_grads",)

    def __init__(self, grads: dict[int, object] | None = None):
        self._grads: dict[int, object] = dict(grads) if grads else {}

    # ------------------------------------------------------------ mapping
    def __getitem__(self, param):
        try:
            return self._grads[_key(param)]
        except KeyError:
            held = sorted(self._grads)
            raise KeyError(
                f"no gradient for {_describe(param)} in this store (it holds ids {held}); "
                "was it used in the loss, created with requires_grad=True, "
                "or already taken out by an optimizer's step()?"
            ) from None

    def __setitem__(self, param, grad) -> None:
        self._grads[_key(param)] = grad

    def get(self, param, default=None):
        return self._grads.get(_key(param), default)

    def __contains__(self, param) -> bool:
        return _key(param) in self._grads

    def __len__(self) -> int:
        return len(self._grads)

    def __iter__(self) -> Iterator[int]:
        return iter(self._grads)

    def keys(self):
        return self._grads.keys()

    def values(self):
        return self._grads.values()

    def items(self):
        return self._grads.items()

    def pop(self, param, *default):
        """Remove and return the gradient of `param` (or `default` when given and absent)."""
        key = _key(param)
        if key not in self._grads and not default:
            return self[param]  # raises the explanatory KeyError
        return self._grads.pop(key, *default)

    def drain(self, params: Iterable) -> list:
        """Remove and return the gradients of exactly `params`, in order; None where absent.

        This is how an optimizer takes its own gradients and leaves every other one in place.
        """
        return [self._grads.pop(_key(p), None) for p in params]

    # ------------------------------------------------------------ accumulation
    def merge(self, other: GradientStore) -> GradientStore:
        """Add `other`'s gradients into this store (sum where both hold one); returns self.

        Used to accumulate gradients over micro-batches: `total += loss_i.backward()`.
        """
        if not isinstance(other, GradientStore):
            raise TypeError(f"can only merge another GradientStore, not {type(other).__name__}")
        for key, grad in other._grads.items():
            mine = self._grads.get(key)
            if mine is None:
                self._grads[key] = grad.copy()  # own copy: `other` may be changed later
            else:
                if type(mine) is not type(grad):
                    raise backend.DeviceError(
                        f"cannot merge gradients of parameter id={key}: one is on "
                        f"{backend.device_of(mine)}, the other on {backend.device_of(grad)}"
                    )
                if mine.shape != grad.shape:
                    raise ValueError(
                        f"cannot merge gradients of parameter id={key}: shapes {mine.shape} "
                        f"and {grad.shape} differ"
                    )
                mine += grad
        return self

    def __iadd__(self, other: GradientStore) -> GradientStore:
        return self.merge(other)

    def __repr__(self) -> str:
        entries = ", ".join(f"{k}: {tuple(g.shape)}" for k, g in self._grads.items())
        return f"GradientStore({{{entries}}})"
