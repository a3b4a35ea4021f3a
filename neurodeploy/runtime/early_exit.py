"""Early exits: each sample stops at the first window whose output is confident enough.

With per-window outputs y (B, L, n), a sample's exit window is the first l whose softmax confidence
``max_c softmax(y[b, l])_c`` reaches the threshold (the last window when none does).
"""
from __future__ import annotations

import numpy as np


def exit_windows(y: np.ndarray, threshold: float) -> np.ndarray:
    """Per sample, the window it exits at. y (B, L, n) per-window outputs."""
    z = y - y.max(axis=-1, keepdims=True)
    confidence = (np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)).max(axis=-1)
    reached = confidence >= threshold
    return np.where(reached.any(axis=1), reached.argmax(axis=1), y.shape[1] - 1)


def exit_outputs(y: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """The output each sample exits with: y[b, exits[b]] of per-window outputs (B, L, n); a captured model's
    y (B, n) is already that (:func:`neurodeploy.runtime.dense_step.model_output`)."""
    return y if y.ndim == 2 else y[np.arange(len(y)), exits]
