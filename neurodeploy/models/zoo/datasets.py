"""Event datasets the zoo models are trained and tested on, generated deterministically from a seed.

No downloads are possible here, so each seed architecture gets a task shaped like its paper's, small
enough to train on a CPU in minutes. Every generator returns ``(x, labels)``: x (n, T, *shape) float32
0/1 events, time-major per sample, and int64 labels (n,). Splits use disjoint seeds
(:data:`SPLIT_SEEDS`).

- :func:`moving_bars` (LiquidSpikeFormer, DVS gestures): a bar sweeps across a 16x16 sensor in one of 4
  directions; ON events (channel 0) where it arrives, OFF events (channel 1) where it leaves, plus noise.
- :func:`occluded_objects` (Neuro-SVT, object permanence): an object (one of 3 shapes) moves inside one
  quadrant of the sensor for 16 steps, then disappears behind an occluder for the rest of the sequence
  (48 steps); the label is where it is hidden (the quadrant: localization after occlusion).
- :func:`burst_order` (Mamba-Liquid-SNN, long-range dependency): two bursts on 16 channels, the first
  in steps 0-19, the second in steps 36-55; the class is which group fired first and which half of it.
- :func:`salient_patterns` (SNN filter + transformer): sparse background noise, with 2-3 windows where
  one of 4 channel patterns bursts; the class is the pattern.
"""
from __future__ import annotations

import numpy as np

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def _rng(split: str, salt: int) -> np.random.Generator:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {list(SPLIT_SEEDS)}, got {split!r}")
    return np.random.default_rng([SPLIT_SEEDS[split], salt])


def _events(frames: np.ndarray) -> np.ndarray:
    """Binary frames (n, T, H, W) -> DVS events (n, T, 2, H, W): ON where a pixel turns on, OFF where off."""
    before = np.concatenate([np.zeros_like(frames[:, :1]), frames[:, :-1]], axis=1)
    return np.stack([frames & ~before, before & ~frames], axis=2)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    return rng.random(shape) < rate


def moving_bars(n: int, split: str = "train", steps: int = 32, size: int = 16, noise: float = 0.01):
    """4 classes: a 3-pixel bar moving right, left, down or up at half a pixel per step."""
    rng = _rng(split, 1)
    labels = rng.integers(0, 4, n)
    frames = np.zeros((n, steps, size, size), dtype=bool)
    grid = np.arange(size)
    for i, label in enumerate(labels):
        start, speed = rng.uniform(-3, 4), rng.uniform(0.4, 0.6)
        for t in range(steps):
            pos = start + speed * t
            band = (grid >= pos) & (grid < pos + 3)
            if label in (1, 3):  # moving left / up: mirror the position
                band = band[::-1]
            frames[i, t] = band[None, :] if label in (0, 1) else band[:, None]
    x = _events(frames) | _noise(rng, (n, steps, 2, size, size), noise)
    return x.astype(np.float32), labels.astype(np.int64)


SHAPES = {
    0: np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1]], dtype=bool),  # square
    1: np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=bool),  # horizontal bar
    2: np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=bool),  # vertical bar
}
VISIBLE_STEPS = 16


def occluded_objects(n: int, split: str = "train", steps: int = 64, size: int = 16, noise: float = 0.005):
    """4 classes: the quadrant (top-left, top-right, bottom-left, bottom-right) in which a shape (square,
    horizontal or vertical bar) moves for the first :data:`VISIBLE_STEPS` steps before it is occluded to
    the end (``steps - 16`` >= 30 frames). Permanence is judged on the output after the last occluded
    frame: where is the hidden object?"""
    rng = _rng(split, 2)
    labels = rng.integers(0, 4, n)
    frames = np.zeros((n, steps, size, size), dtype=bool)
    half = size // 2
    for i, label in enumerate(labels):
        top, left = (label // 2) * half, (label % 2) * half
        shape = SHAPES[int(rng.integers(0, 3))]
        y, x = rng.uniform(1, half - 4, 2)
        vy, vx = rng.choice([-1, 1], 2) * rng.uniform(0.05, 0.15, 2)
        for t, (jy, jx) in enumerate(rng.integers(-1, 2, (VISIBLE_STEPS, 2))):  # drift plus sensor shake
            r = top + int(np.clip(y + vy * t + jy, 0, half - 3))
            c = left + int(np.clip(x + vx * t + jx, 0, half - 3))
            frames[i, t, r: r + 3, c: c + 3] = shape
    x = _events(frames) | _noise(rng, (n, steps, 2, size, size), noise)
    return x.astype(np.float32), labels.astype(np.int64)


def burst_order(n: int, split: str = "train", steps: int = 64, channels: int = 16, noise: float = 0.02):
    """4 classes = (group fired first: A = channels 0-7 or B = 8-15) x (half of it that fired: low, high).
    The second burst, 36-55 steps in, is on the other group; the class needs the first burst remembered."""
    rng = _rng(split, 3)
    labels = rng.integers(0, 4, n)
    x = _noise(rng, (n, steps, channels), noise)
    half = channels // 4
    for i, label in enumerate(labels):
        first, which = divmod(int(label), 2)
        t1, t2 = rng.integers(0, 16), rng.integers(36, 52)
        lo = first * (channels // 2) + which * half
        x[i, t1: t1 + 4, lo: lo + half] |= rng.random((4, half)) < 0.8
        other = (1 - first) * (channels // 2)
        x[i, t2: t2 + 4, other: other + channels // 2] |= rng.random((4, channels // 2)) < 0.6
    return x.astype(np.float32), labels.astype(np.int64)


PATTERNS = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)


def salient_patterns(n: int, split: str = "train", steps: int = 64, channels: int = 16, window: int = 4,
                     noise: float = 0.01):
    """4 classes: 2-3 windows (of ``window`` steps) in which channel pattern ``label`` bursts (each of the 4
    pattern bits drives 4 channels); the other windows hold sparse noise only."""
    rng = _rng(split, 4)
    labels = rng.integers(0, 4, n)
    x = _noise(rng, (n, steps, channels), noise)
    mask = np.repeat(PATTERNS, channels // 4, axis=1)
    for i, label in enumerate(labels):
        for w in rng.choice(steps // window, rng.integers(2, 4), replace=False):
            x[i, w * window: (w + 1) * window] |= (rng.random((window, channels)) < 0.7) & mask[label]
    return x.astype(np.float32), labels.astype(np.int64)
