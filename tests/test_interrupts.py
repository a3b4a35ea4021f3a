"""Stopping the CLI in the middle of a Lava run: it stops within 5 s, and no process of the run is left
(sample by sample, and a streamed batch).

The CLI runs in its own session (its own process group, SIGINT at its default as in a terminal) on a
spiking-only bundle of the NIR paper's Braille RNN (256 steps per sample, several seconds each in Lava),
with a checkpoint folder. Once Lava's workers run and one sample is saved, it gets SIGINT on the whole
group (what Ctrl-C does), SIGTERM, or SIGKILL (what a time-out or a closed terminal does).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CASES, live_processes

import neurodeploy as nd

BRAILLE = CASES / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir"
LIMIT_S = 5.0


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group."""
    return [pid for pid, (_, group) in live_processes().items() if group == pgid]


@pytest.fixture(scope="module")
def braille_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupts")
    bundle = nd.compile(BRAILLE, root / "bundle")
    np.save(root / "x.npy", (np.random.default_rng(0).random((40, 256, 12)) < 0.15).astype(np.float64))
    return root, bundle.path


def _start(root, bundle, name: str) -> tuple[subprocess.Popen, object]:
    checkpoint = root / f"checkpoint_{name}"
    cmd = [sys.executable, "-m", "neurodeploy.cli", "cosim", str(bundle), "--backend", "lava",
           "--input", str(root / "x.npy"), "--checkpoint", str(checkpoint)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (checkpoint / "progress.json").exists() or len(_group(proc.pid)) < 5:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    return proc, checkpoint


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_lava_run_leaves_nothing_behind(braille_run, sig):
    root, bundle = braille_run
    proc, checkpoint = _start(root, bundle, sig)
    workers = len(_group(proc.pid)) - 1
    t0 = time.monotonic()
    if sig == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    else:
        os.kill(proc.pid, getattr(signal, sig))
    try:
        _, err = proc.communicate(timeout=LIMIT_S)
    finally:
        main_s = time.monotonic() - t0
        while _group(proc.pid) and time.monotonic() - t0 < LIMIT_S:
            time.sleep(0.1)
        left, group_s = _group(proc.pid), time.monotonic() - t0
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert workers >= 4 and main_s < LIMIT_S
    assert left == [], f"{len(left)} processes of the run left {group_s:.1f} s after {sig}"
    if sig != "SIGKILL":
        lines = [line for line in err.decode().splitlines() if line.strip()]
        word, code = ("interrupted", 130) if sig == "SIGINT" else ("terminated", 143)
        assert proc.returncode == code and len(lines) == 1, err.decode()
        assert lines[0] == f"neurodeploy cosim: {word}; partial results are in {checkpoint}"
    assert (checkpoint / "progress.json").exists()  # the samples done so far are kept


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_lava_stream_leaves_nothing_behind(mamba_bundle, tmp_path, sig):
    """The same on a streamed co-simulation (the whole batch in one Lava run, no checkpoint)."""
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((600, 32, 16)) < 0.25).astype(np.float64))
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", "cosim", str(mamba_bundle), "--backend", "lava",
                             "--input", str(tmp_path / "x.npy")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(_group(proc.pid)) < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(2.0)  # the stream is running
    assert proc.poll() is None
    t0 = time.monotonic()
    (os.killpg if sig == "SIGINT" else os.kill)(proc.pid, getattr(signal, sig))
    try:
        _, err = proc.communicate(timeout=LIMIT_S)
    finally:
        while _group(proc.pid) and time.monotonic() - t0 < LIMIT_S:
            time.sleep(0.1)
        left = _group(proc.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert left == [], f"{len(left)} processes of the stream left after {sig}"
    if sig != "SIGKILL":
        lines = [line for line in err.decode().splitlines() if line.strip()]
        word, code = ("interrupted", 130) if sig == "SIGINT" else ("terminated", 143)
        assert proc.returncode == code and lines == [f"neurodeploy cosim: {word}"], err.decode()
