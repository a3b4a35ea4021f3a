"""The package as a user installs it: a wheel, into a fresh venv outside the checkout, run from elsewhere.

The wheel is built from the repo, installed with its dependencies through constraints.txt (and lava-nc
with ``--no-deps --ignore-requires-python``, the one step pip cannot take on 3.11), then ``neurodeploy
demo`` (which compiles through ``neurodeploy.compile``, co-simulates on Lava and writes the JSON report
``energy --json`` prints) and the API on the demo's bundle, run from another directory. The profiles must come from inside the installed package, and no top-level ``exporters``
module may be importable (that name belongs to another PyPI project).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_cli_progress import run_in_pty

ROOT = Path(__file__).resolve().parents[1]
# --no-compile: pip's byte-compiling of torch and the rest took ~30 s of this test; Python compiles what it
# imports anyway, so what is tested (the install resolves, the package runs from it) is the same
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile",
       "-c", str(ROOT / "constraints.txt")]


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{args}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def test_every_subpackage_is_in_the_wheel():
    """pyproject lists the packages by hand (the repo maps exporters/ and hw_profiles/ into the package):
    each folder of neurodeploy/ with an __init__.py must be listed, or the wheel silently lacks it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "neurodeploy").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools' build/ folder stays out of the checkout and holds nothing stale
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "out", "*.egg-info",
                                                                 "__pycache__", ".hypothesis", ".pytest_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps", "-w",
          str(tmp_path / "dist"), str(source)], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("neurodeploy-*.whl"))
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")], cwd=tmp_path)
    python = str(tmp_path / "venv" / "bin" / "python")
    _run([python, *PIP, str(wheel)], cwd=tmp_path)
    _run([python, *PIP, "--no-deps", "--ignore-requires-python", "lava-nc==0.10.0"], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = str(tmp_path / "venv" / "bin" / "neurodeploy")

    # the demo as a person at a terminal runs it: progress from the start, never silent for 2 s
    code, first_s, silence_s, out = run_in_pty(["demo", "--out", "demo", "--samples", "2"], elsewhere,
                                               script=Path(command))
    assert code == 0 and first_s < 2.0 and silence_s < 2.0, (first_s, silence_s, out[-3000:])
    report = json.loads((elsewhere / "demo" / "report.json").read_text())
    assert report["model"] == "liquidspikeformer" and report["agreement"]["spike_mismatches"] == 0, out[-2000:]
    assert report["energy_j"]["total"] > 0 and report["profiles"]["loihi"] == "loihi2"
    assert report["schedule"] == "window" and report["assumptions"]
    assert report["early_exit"]["energy_j"]["full"] == report["energy_j"]["total"]  # early exits priced

    probe = _run([python, "-c", (
        "import importlib.util, json, neurodeploy as nd, neurodeploy.qat\n"
        "from neurodeploy.profiles import PROFILE_DIR\n"
        "b = nd.load('demo/bundle')\n"
        "r = nd.cosimulate(b, backend='emulator')\n"
        "print(json.dumps({'file': nd.__file__, 'profiles': str(PROFILE_DIR), 'schedule': b.manifest.default_schedule,\n"
        "                  'mismatches': r.agreement.spike_mismatches,\n"
        "                  'exporters': importlib.util.find_spec('exporters') is not None,\n"
        "                  'energy': nd.estimate(b, r).energy_j['total']}))\n")], cwd=elsewhere)
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    site = str(tmp_path / "venv")
    assert seen["file"].startswith(site) and seen["profiles"].startswith(site), seen  # not the checkout's
    assert seen["mismatches"] == 0 and seen["energy"] > 0 and not seen["exporters"]
