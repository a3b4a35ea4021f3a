"""Where a run computes: the emulator's torch device and ONNX Runtime's execution provider, from one
``device`` choice (the API's ``device=``, the CLI's ``--device``)::

    None, "auto"     the emulator on CUDA where torch sees a GPU, the dense part on ONNX Runtime's CUDA
                     provider where onnxruntime offers it; the CPU otherwise
    "cpu"            both on the CPU
    "cuda", "cuda:N" both on that GPU; refused, with what to install, where torch has no CUDA device or
                     onnxruntime no CUDA provider (the CPU-only ``torch`` the constraints pin, or ``onnxruntime``
                     installed where ``onnxruntime-gpu`` should be: docs/install.md, "On a GPU")

Lava runs on the CPU whatever the choice (its CPU back-end simulates Loihi); the choice still places the
dense part.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from neurodeploy.errors import DependencyError, UsageError

CHOICES = ("auto", "cpu", "cuda", "cuda:N")


@dataclass(frozen=True)
class Device:
    torch: str | None  # the emulator's torch device; None: CUDA where torch sees a GPU, else the CPU
    ort_gpu: bool  # the dense part on ONNX Runtime's CUDA provider where it is offered


AUTO = Device(None, True)


def resolve_device(device: str | None) -> Device:
    """The :class:`Device` for a ``device`` choice (the module docstring), checked against what is installed."""
    if device is None or device == "auto":
        return AUTO
    if device == "cpu":
        return Device("cpu", False)
    if not re.fullmatch(r"cuda(:\d+)?", str(device)):
        raise UsageError(f"device {device!r}: one of auto, cpu, cuda or cuda:N (N: the GPU's index)")
    _check_cuda(device)
    return Device(device, True)


def _check_cuda(device: str) -> None:
    """A named error unless torch has the CUDA device and onnxruntime its CUDA provider."""
    import onnxruntime as ort
    import torch

    problems = []
    if not torch.cuda.is_available():
        problems.append(f"torch {torch.__version__} sees no CUDA device (a CPU build, or no GPU on this machine)")
    elif ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        problems.append(f"torch sees {torch.cuda.device_count()} CUDA device(s): no {device}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        problems.append(f"onnxruntime {ort.__version__} offers no CUDAExecutionProvider "
                        f"(providers: {', '.join(ort.get_available_providers())})")
    if problems:
        raise DependencyError(f"device {device!r} is not available: {'; '.join(problems)}. Install the GPU "
                              "builds (docs/install.md, 'On a GPU': CUDA torch from PyTorch's index, onnxruntime-gpu in "
                              "place of onnxruntime), or run with device='cpu' / --device cpu")
