"""minigrad on an NVIDIA GPU, beyond plain CuPy arrays: CUDA graphs and a capturable cuBLAS.

    step = mg.cuda.graph(train_step, x_example, y_example)   # see graphs.py
    loss = step(x, y)                                         # one graph launch

Nothing here imports CuPy until it is used, so `import minigrad` works without a GPU.
"""

from .graphs import CapturedStep, CaptureError, graph

__all__ = ["CaptureError", "CapturedStep", "graph"]
