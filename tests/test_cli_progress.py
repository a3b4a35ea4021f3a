"""Every CLI command on a zoo model through a pseudo-terminal (``demo``, on the default one, from the installed
wheel in tests/test_wheel.py), as a person at a terminal runs it: something is
shown within 2 s of the start and then at least every 2 s until the command ends (the status line names the
stage; progress bars draw beneath it), and each ends with exit code 0. ``--version`` answers at once; ``-q``
prints the results only."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("neurodeploy")
MODEL = "tiny_hybrid"  # the zoo's smallest; demo runs the default model


def run_in_pty(args: list[str], cwd: Path, timeout_s: float = 600, script: Path = SCRIPT
               ) -> tuple[int, float, float, str]:
    """(exit code, seconds to the first output, longest silence in seconds, the output) of ``neurodeploy
    args`` (the console script ``script``) with a pseudo-terminal as its stdout and stderr."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console script, in cwd
        os.chdir(cwd)
        os.execv(str(script), [str(script), *args])
    t0, stamps, out = time.perf_counter(), [], b""
    while time.perf_counter() - t0 < timeout_s:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        stamps.append(time.perf_counter() - t0)
        out += data
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    gaps = [b - a for a, b in zip([0.0, *stamps], stamps)]
    return os.waitstatus_to_exitcode(status), (stamps or [float("inf")])[0], max(gaps, default=float("inf")), \
        out.decode(errors="replace")


COMPILE_PASSES = ("split", "to_nir", "lower", "torch_reference", "export_dense", "quantize_and_map", "write")
COMMANDS = [
    ("compile", None),  # run once by the fixture below, for the other commands' bundle
    ("cosim", ["cosim", "b", "--backend", "emulator"]),
    ("energy", ["energy", "b", "--backend", "emulator"]),
    ("report", ["report", "b", "--backend", "emulator", "--html", "r.html"]),
    ("evaluate", ["evaluate", "b", "--data", "data.npz"]),
    ("benchmark", ["benchmark", "b", "--data", "data.npz", "--price-samples", "2"]),
    ("parity", ["parity", "b", "--input", "x.npy", "--backend", "emulator"]),
    ("sweep", ["sweep", "sweep.toml", "--out", "s"]),
]  # demo: in tests/test_wheel.py, from the installed wheel, through a pseudo-terminal too


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(a folder with the zoo model compiled in ``b`` through a pseudo-terminal, a dataset, one input and a sweep
    configuration; that compile's exit code, first output, longest silence and output)."""
    import neurodeploy as nd

    assert SCRIPT.is_file(), "the console script is installed beside the interpreter (pip install -e .)"
    folder = tmp_path_factory.mktemp("cli")
    run = run_in_pty(["compile", MODEL, "--out", "b"], folder)
    assert run[0] == 0, run[3][-3000:]
    x = nd.load(folder / "b").reference_inputs()
    np.savez(folder / "data.npz", x=x, labels=np.arange(len(x)) % 2)
    np.save(folder / "x.npy", x[:2])
    (folder / "sweep.toml").write_text(f'model = "{MODEL}"\ndata = "data.npz"\nprice_samples = 2\n[grid]\n'
                                       'cut = ["frontend.layers.3"]\nmode = ["fixed"]\ngpu = ["h100"]\n')
    return folder, run


@pytest.mark.parametrize("name, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_shows_progress_on_a_terminal(name, args, compiled):
    folder, run = compiled
    code, first_s, silence_s, out = run if args is None else run_in_pty(args, folder)
    assert code == 0, out[-3000:]
    assert first_s < 2.0 and silence_s < 2.0, f"{name}: first output after {first_s:.2f} s, silent for {silence_s:.2f} s"
    if name == "compile":  # on a terminal the log names every pass, above the status line
        text = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", out).split())  # as read: no colours, no wrapping
        assert all(f"pass {i} of 7, {p}" in text for i, p in enumerate(COMPILE_PASSES, 1)), text[-3000:]
        took = re.search(r"compiled \S+ in [0-9.]+ s: (.*? write [0-9.]+ s)", text)  # and the seconds of each
        assert took and [part.split()[0] for part in took.group(1).split(", ")] == list(COMPILE_PASSES), text[-3000:]


def test_version_and_quiet(compiled):
    folder, _ = compiled
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().startswith("neurodeploy ")
    code, _, _, out = run_in_pty(["-q", "cosim", "b", "--backend", "emulator", "--json"], folder)
    assert code == 0 and out.lstrip().startswith("{") and "neurodeploy:" not in out
