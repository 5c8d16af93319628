"""Probes of the accelerator. They look at torch only if a model loaded it, except
`cuda_device_count`, which the xdist controller calls once when a GPU driver is present."""

from __future__ import annotations

import sys


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (or any error that says it ran out of memory)."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    """Hand the GPU memory torch caches back, after an out-of-memory error or a model's close."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_memory_bytes() -> int | None:
    """Peak memory of this process: the GPU's if a CUDA model ran, else resident memory."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cuda_device_count() -> int:
    """GPUs torch can see; counting does not create a CUDA context (the controller never runs a model)."""
    import torch

    return torch.cuda.device_count()
