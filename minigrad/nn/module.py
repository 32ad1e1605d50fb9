"""Module and Parameter: the containers that turn a pile of tensors into a model.

A `Parameter` is a tensor that requires gradients and that a `Module` finds by itself.
A `Module` registers every Parameter and sub-Module assigned to one of its attributes, in the
order they are assigned, so that the whole tree can be walked:

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(64, 128)   # registered as child "hidden"
            self.out = nn.Linear(128, 10)      # registered as child "out"

        def forward(self, x):
            return self.out(nn.functional.relu(self.hidden(x)))

    model = MLP()
    [name for name, _ in model.named_parameters()]
    # ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']

Order: a module's own parameters first (in assignment order), then each child's, depth-first,
as in PyTorch. A parameter shared by two layers is listed once.

`to(device)` moves every parameter's array *in place*: the Parameter objects (and their ids,
which key the GradientStore and optimizer state) stay the same, so an optimizer built before
the move keeps working after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np

from .. import backend
from ..tensor import Tensor


class StateDictError(ValueError):
    """A state dict does not fit the module: names missing or extra, or shapes that differ."""


class Parameter(Tensor):
    """A tensor that requires gradients and is registered by the Module that holds it.

    >>> w = nn.Parameter(np.zeros((3, 2), dtype=np.float32))
    >>> w.requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if type(data) is not np.ndarray and not backend.is_gpu_array(data):
            data = np.asarray(data, dtype=np.float32)  # lists and numbers: the default dtype
        super().__init__(data, requires_grad=True, name=name)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("tensor") :]


class Module:
    """Base class of every layer and model: subclass it, assign layers in __init__, write forward.

    Call `super().__init__()` first in your __init__, so that registration works.
    """

    def __init__(self):
        # object.__setattr__: these three must exist before __setattr__ can register anything.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, (Parameter, Module)) and "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {type(value).__name__} {name!r} before Module.__init__() ran: "
                f"call super().__init__() at the start of {type(self).__name__}.__init__"
            )
        params = self.__dict__.get("_parameters")
        modules = self.__dict__.get("_modules")
        if params is not None:
            # A name holds one thing: an assignment replaces any earlier registration under it.
            params.pop(name, None)
            modules.pop(name, None)
            if isinstance(value, Parameter):
                params[name] = value
            elif isinstance(value, Module):
                modules[name] = value
        # Also a plain attribute, so that self.weight is an ordinary (fast) lookup in forward.
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Same as `setattr(self, name, param)`, for names built at run time."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{name!r}: expected a Parameter or None, got {type(param).__name__}")
        setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Same as `setattr(self, name, module)`, for names built at run time (e.g. "0", "1")."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r}: expected a Module or None, got {type(module).__name__}")
        setattr(self, name, module)

    # ------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ walking the tree
    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in registration order."""
        return (m for _, m in self.named_children())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(list(self._modules.items()))

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module ("" ) and every descendant, depth-first, with dotted names."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each listed once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or param.id in seen:
                    continue
                seen.add(param.id)
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> list[Parameter]:
        """Every parameter, each once, in the order of named_parameters()."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of scalar values in all parameters."""
        return int(sum(p.size for p in self.parameters()))

    # ------------------------------------------------------------ modes and devices
    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout active) for this module and all below it; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode (Dropout off); returns self."""
        return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter's array to `device` in place (same Parameter objects and ids)."""
        device = backend.normalize_device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
        return self

    def to_gpu(self) -> Module:
        return self.to(backend.GPU)

    def to_cpu(self) -> Module:
        return self.to(backend.CPU)

    @property
    def device(self) -> str:
        """The device of the parameters ("cpu" for a module without any)."""
        devices = {p.device for p in self.parameters()}
        if len(devices) > 1:
            raise backend.DeviceError(
                f"{type(self).__name__} has parameters on several devices ({sorted(devices)}); "
                "call .to(device) to put them together"
            )
        return devices.pop() if devices else backend.CPU

    # ------------------------------------------------------------ saving and loading
    def state_dict(self) -> OrderedDict:
        """Dotted name -> a NumPy copy of the parameter's values (host memory, safe to keep)."""
        return OrderedDict(
            (name, np.array(backend.to_numpy(p.data), copy=True))
            for name, p in self.named_parameters()
        )

    def load_state_dict(self, state: Mapping, strict: bool = True) -> Module:
        """Copy values from `state` (name -> array) into the parameters, in place.

        Every parameter must be there, with its exact shape, and nothing else may be; the
        error names what is missing, extra or of the wrong shape. strict=False skips missing
        and extra names (shapes are still checked). The arrays keep their dtype and device.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a mapping name -> array, got {type(state)}")
        params = OrderedDict(self.named_parameters())
        missing = [n for n in params if n not in state]
        extra = [n for n in state if n not in params]
        problems = []
        if strict and missing:
            problems.append(f"missing: {', '.join(missing)}")
        if strict and extra:
            problems.append(f"unexpected: {', '.join(extra)}")
        values = {}
        for name, param in params.items():
            if name not in state:
                continue
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            value = backend.to_numpy(value)
            if value.shape != param.shape:
                problems.append(
                    f"wrong shape for {name}: the checkpoint has {value.shape}, "
                    f"the model has {param.shape}"
                )
                continue
            if value.dtype.kind not in "fiu":
                problems.append(f"wrong dtype for {name}: {value.dtype} is not numeric")
                continue
            values[name] = value
        if problems:
            raise StateDictError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(problems)
            )
        for name, value in values.items():
            param = params[name]
            # In place: the array object stays, so anything holding it (optimizers) sees the load.
            param.data[...] = backend.to_device(value.astype(param.dtype, copy=False), param.device)
        return self

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's line (override in layers)."""
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return head + ")"
        lines = [head]
        for name, child in kids:
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        return "\n".join(lines) + "\n)"
