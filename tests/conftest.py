"""Shared fixtures. Lava is made importable (Python 3.11 fix) before any test imports it."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from neurodeploy.runtime.lava_compat import install

if TYPE_CHECKING:
    import numpy as np
    import torch


def pytest_configure(config) -> None:
    """Under pytest-xdist (the test command's ``-n 2``) each worker computes on its share of the cores: torch's
    intra-op threads, which ONNX Runtime's sessions follow by default (``neurodeploy.runtime.threads``), and
    ``OMP_NUM_THREADS`` for the commands a test starts. Two workers with every core each would oversubscribe
    the CI's 2 cores (issue 30 measured 3-20x slowdowns from threads spinning on shared cores)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        share = max(1, len(os.sched_getaffinity(0)) // int(workers))
        torch.set_num_threads(share)
        os.environ["OMP_NUM_THREADS"] = str(share)


install()

SHARED = Path(__file__).resolve().parents[2] / "shared"
CASES = SHARED / "cases"


def check_in_chromium(page: Path, screenshot: Path) -> str | None:
    """Open ``page`` in headless Chromium with scripts/check_report_in_chromium.sh where a browser is
    installed; its output (which says how many images Chromium decoded), or None without a browser."""
    import shutil
    import subprocess

    if not (shutil.which("chromium") or shutil.which("google-chrome")):
        return None
    done = subprocess.run(["bash", str(Path(__file__).parents[1] / "scripts" / "check_report_in_chromium.sh"),
                           str(page), str(screenshot)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def live_processes() -> dict[int, tuple[int, int]]:
    """Every live (not zombie) process, read from /proc: pid -> (parent pid, process group)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def child_pids() -> list[int]:
    """PIDs of this process's live children, read from /proc (independent of multiprocessing)."""
    me = os.getpid()
    return [pid for pid, (parent, _) in live_processes().items() if parent == me]


def new_child_pids(before: set[int]) -> list[int]:
    """Children started since ``before``, less multiprocessing's resource tracker (it lives all session)."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return sorted(set(child_pids()) - before - {tracker})


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """Fails the session if any test leaves a Lava worker (or any child process) running."""
    before = set(child_pids())
    yield
    leftovers = multiprocessing.active_children()
    stray = new_child_pids(before)
    assert not leftovers and not stray, f"processes left behind: {leftovers} {sorted(stray)}"


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory):
    """The zoo's smallest hybrid model (tiny_hybrid), compiled once for the session."""
    import neurodeploy as nd

    return nd.compile("tiny_hybrid", tmp_path_factory.mktemp("bundles") / "tiny_hybrid", samples=8).path


@pytest.fixture(scope="session")
def mamba_bundle(tmp_path_factory):
    """The SNN + Mamba zoo model (snnTorch front-end, streaming back-end), compiled once."""
    import neurodeploy as nd

    return nd.compile("tiny_mamba", tmp_path_factory.mktemp("bundles") / "tiny_mamba", samples=8).path


def on_salient_windows(dense, cut: torch.Tensor, k: int, threshold: float, n_out: int) -> tuple[np.ndarray, int]:
    """What the event schedule should give: the model's own code after the cut (``dense``) on each sample's
    salient windows alone (the cut fired at least ``threshold`` spikes in them), zeros where none is; and how
    many sample windows that ran."""
    import torch

    want, ran = [], 0
    with torch.no_grad():
        for b in range(len(cut)):
            salient = [w for w in range(cut.shape[1] // k) if cut[b, w * k: (w + 1) * k].sum() >= threshold]
            ran += len(salient)
            seq = torch.cat([cut[b: b + 1, w * k: (w + 1) * k] for w in salient], 1) if salient else None
            want.append(dense(seq)[0] if salient else torch.zeros(n_out))
    return torch.stack(want).numpy(), ran
