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

A *buffer* is a tensor a module keeps that is not learned by gradients (BatchNorm's running
mean and variance): `self.register_buffer("running_mean", mg.zeros(C))`. Buffers are saved in
`state_dict()` (and so in checkpoints) and moved by `to()`, but are not `parameters()`.

Loading follows the state protocol every stateful object in minigrad shares:
`check_state_dict(state)` validates and returns a prepared state (may raise, changes nothing),
`apply_state_dict(prepared)` copies it in (cannot fail); `load_state_dict` is the two in a row.
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
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
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
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers and not isinstance(value, (Parameter, Module)):
            # Assigning to a buffer's name replaces the buffer (a tensor, or None to empty it).
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer {name!r}: a buffer holds a "
                    "Tensor or None"
                )
            buffers[name] = value
            object.__setattr__(self, name, value)
            return
        if params is not None:
            # A name holds one thing: an assignment replaces any earlier registration under
            # it. A name that stays a parameter (or a module) keeps its place in the order.
            buffers.pop(name, None)
            if isinstance(value, Parameter):
                modules.pop(name, None)
                params[name] = value
            elif isinstance(value, Module):
                params.pop(name, None)
                modules[name] = value
            else:
                params.pop(name, None)
                modules.pop(name, None)
        # Also a plain attribute, so that self.weight is an ordinary (fast) lookup in forward.
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep `tensor` as state that is not a parameter (e.g. BatchNorm's running mean).

        It is reachable as `self.<name>`, moved by `to()`, and (when persistent) saved in
        `state_dict()`, but never in `parameters()`, so no optimizer updates it.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError(
                f"cannot register buffer {name!r} before Module.__init__() ran: call "
                f"super().__init__() at the start of {type(self).__name__}.__init__"
            )
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"a buffer name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}; "
                "wrap arrays with mg.tensor(...)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

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

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) for every buffer that is not None, each listed once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is None or buf.id in seen:
                    continue
                seen.add(buf.id)
                yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self) -> list[Tensor]:
        return [b for _, b in self.named_buffers()]

    def apply(self, fn) -> Module:
        """Call fn(module) on every sub-module and then on this one (children first); returns
        self. The usual use is initialization:

            def init_weights(m):
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
            model.apply(init_weights)
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

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
        """Move every parameter's and buffer's array to `device` in place (same objects, ids)."""
        device = backend.normalize_device(device)
        for tensor in [*self.parameters(), *self.buffers()]:
            tensor.data = backend.to_device(tensor.data, device)
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
    def _named_state(self) -> OrderedDict:
        """Every tensor that state_dict() saves, module by module as PyTorch orders them:
        each module's parameters, then its persistent buffers; a shared tensor once."""
        state: OrderedDict = OrderedDict()
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            buffers = [
                (n, b) for n, b in module._buffers.items() if n not in module._non_persistent
            ]
            for name, tensor in [*module._parameters.items(), *buffers]:
                if tensor is None or tensor.id in seen:
                    continue
                seen.add(tensor.id)
                state[f"{module_name}.{name}" if module_name else name] = tensor
        return state

    def state_dict(self) -> OrderedDict:
        """Dotted name -> a NumPy copy of each parameter's and persistent buffer's values
        (host memory, safe to keep)."""
        return OrderedDict(
            (name, np.array(backend.to_numpy(t.data), copy=True))
            for name, t in self._named_state().items()
        )

    def check_state_dict(self, state: Mapping, strict: bool = True) -> dict:
        """Validate `state` (name -> array) against this module; return it prepared for
        apply_state_dict(). Changes nothing; raises StateDictError naming every problem.

        Every parameter and buffer must be there, with its exact shape, and nothing else may
        be; strict=False skips missing and extra names (shapes are still checked).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a mapping name -> array, got {type(state)}")
        targets = self._named_state()
        missing = [n for n in targets if n not in state]
        extra = [n for n in state if n not in targets]
        problems = []
        if strict and missing:
            problems.append(f"missing: {', '.join(missing)}")
        if strict and extra:
            problems.append(f"unexpected: {', '.join(extra)}")
        prepared = {}
        for name, target in targets.items():
            if name not in state:
                continue
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            value = backend.to_numpy(value)
            if value.shape != target.shape:
                problems.append(
                    f"wrong shape for {name}: the checkpoint has {value.shape}, "
                    f"the model has {target.shape}"
                )
                continue
            if value.dtype.kind not in "fiu":
                problems.append(f"wrong dtype for {name}: {value.dtype} is not numeric")
                continue
            prepared[name] = value.astype(target.dtype, copy=False)
        if problems:
            raise StateDictError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(problems)
            )
        return prepared

    def apply_state_dict(self, prepared: dict) -> Module:
        """Copy a state returned by check_state_dict() into the parameters and buffers, in
        place: the array objects stay, so anything holding them (optimizers) sees the load."""
        targets = self._named_state()
        for name, value in prepared.items():
            target = targets[name]
            target.data[...] = backend.to_device(value, target.device)
        return self

    def load_state_dict(self, state: Mapping, strict: bool = True) -> Module:
        """check_state_dict(state, strict) then apply_state_dict: all of it or, on an error
        that names what is missing, extra or of the wrong shape, nothing. Arrays keep their
        dtype and device."""
        return self.apply_state_dict(self.check_state_dict(state, strict=strict))

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


class ModuleList(Module):
    """A list of modules whose parameters the parent finds (a plain Python list would hide
    them: Module only registers what is assigned to its attributes).

        self.blocks = nn.ModuleList([Block() for _ in range(4)])
        for block in self.blocks:
            x = block(x)

    Children are named "0", "1", ... as in PyTorch (so "blocks.0.weight").
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index: int) -> int:
        n = len(self._modules)
        if not isinstance(index, int) or not -n <= index < n:
            raise IndexError(f"index {index!r} is out of range for a ModuleList of {n} modules")
        return index % n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(self._index(index))]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(str(self._index(index)), _checked_module("ModuleList", module))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), _checked_module("ModuleList", module))
        return self

    def extend(self, modules) -> ModuleList:
        modules = [_checked_module("ModuleList", m) for m in modules]  # check all, then add
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, _checked_module("ModuleList", module))
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "ModuleList has no forward(): iterate over it in your own forward "
            "(for layer in self.layers: x = layer(x)), or use nn.Sequential"
        )


class ModuleDict(Module):
    """A dict of modules by name whose parameters the parent finds ("heads.cls.weight").

        self.heads = nn.ModuleDict({"cls": nn.Linear(16, 10), "box": nn.Linear(16, 4)})
        out = self.heads["cls"](x)

    Keeps insertion order, as a Python dict does.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r} (it has {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"a ModuleDict key must be a non-empty string without '.', got {key!r}")
        self.add_module(key, _checked_module("ModuleDict", module))

    def __delitem__(self, key: str) -> None:
        self[key]  # the KeyError with the names, if it is not there
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules))

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return list(self._modules.keys())

    def values(self):
        return list(self._modules.values())

    def items(self):
        return list(self._modules.items())

    def update(self, modules) -> None:
        pairs = list(modules.items() if isinstance(modules, Mapping) else modules)
        for _, module in pairs:
            _checked_module("ModuleDict", module)
        for key, module in pairs:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "ModuleDict has no forward(): pick a module by name in your own forward "
            "(self.heads['cls'](x))"
        )


def _checked_module(owner: str, module) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{owner} holds Modules, got {type(module).__name__}")
    return module
