"""Exporting a model's weights for other frameworks: a .safetensors file PyTorch loads."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from .atomic import _atomic_write
from .encoding import _host_array, _state_of


def export_safetensors(path, model, metadata: dict | None = None) -> Path:
    """Write the model's weights as a .safetensors file with PyTorch's names ("0.weight").

    A torch.nn.Sequential of the same layers loads it:
        mg.export_safetensors("mlp.safetensors", model)
        torch_model.load_state_dict(safetensors.torch.load_file("mlp.safetensors"))

    Needs the safetensors package (pip install safetensors). Written atomically, like save().
    """
    try:
        from safetensors.numpy import save as safetensors_save
    except ImportError:
        raise ImportError(
            "export_safetensors needs the safetensors package: pip install safetensors"
        ) from None
    tensors = {name: _host_array(value, name) for name, value in _state_of(model, "model").items()}
    info = {"format": "pt", "minigrad_version": __version__}  # "pt": what torch loaders expect
    for key, value in (metadata or {}).items():
        info[str(key)] = str(value)
    data = safetensors_save(tensors, metadata=info)
    path = Path(path)
    _atomic_write(path, lambda f: f.write(data))
    return path
