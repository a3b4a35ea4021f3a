"""Writes under injected faults: a full disk or a read-only file system at any point of a write, ``kill -9`` at
a random moment, two writers at once. Afterwards every file is the old or the new complete version, a
resumed sweep table has every row exactly once, and no process is left behind."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.bundle import Manifest, SpikingPart, read_bundle, write_bundle
from neurodeploy.bundle.atomic import locked, write_file
from neurodeploy.errors import DiskError, UsageError
from neurodeploy.sweeps.results import CSV, JSONL, ResultTable

ROOT = Path(__file__).resolve().parents[1]
FAULTS = st.sampled_from([errno.ENOSPC, errno.EROFS, errno.EDQUOT])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _manifest(version: str) -> Manifest:
    return Manifest(name=version, spiking=SpikingPart(file="spiking.nir", dt_s=1e-3, n_in=2, delay_steps={},
                                                      total_delay_steps=0), provenance={"version": version})


def _bundle(path: Path, version: str, size: int = 4096) -> Path:
    """A small bundle whose every file says which version wrote it."""
    return write_bundle(path, _manifest(version), {"spiking.nir": (version * size).encode()[:size]})


def _version(path: Path) -> str:
    """Which version the bundle at ``path`` is, read under the shared lock (a reader's consistent view)."""
    with locked(path, shared=True):
        bundle = read_bundle(path)  # checksums verified: whole files only
        content = (path / "spiking.nir").read_bytes().decode()
    assert set(content) <= set(bundle.manifest.name), "a file of another version"
    return bundle.manifest.name


class _Faults:
    """Raise OSError(code) at the n-th call of the functions every write goes through."""

    NAMES = ("fsync", "replace", "mkdir", "open")

    def __init__(self, monkeypatch, at: int, code: int) -> None:
        self.calls, self.at, self.code = 0, at, code
        for name in self.NAMES:
            original = getattr(os, name)
            monkeypatch.setattr(os, name, self._counting(original))

    def _counting(self, original):
        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                raise OSError(self.code, os.strerror(self.code))
            return original(*args, **kwargs)
        return call


@SLOW
@given(at=st.integers(1, 60), code=FAULTS)
def test_a_bundle_write_that_fails_anywhere_leaves_the_old_bundle(tmp_path_factory, monkeypatch, at, code):
    target = _bundle(tmp_path_factory.mktemp("faults") / "b", "o")
    with monkeypatch.context() as patch:
        faults = _Faults(patch, at, code)
        try:
            _bundle(target, "n")
            wrote = True
        except DiskError as exc:
            assert os.strerror(code).lower()[:8] in str(exc).lower() or "space" in str(exc) or "quota" in str(exc)
            wrote = False
    # a failure before the swap leaves the old bundle; one after it (syncing the folder) the new: never a mix
    assert _version(target) == "n" if wrote else _version(target) in ("o", "n")
    if faults.calls < at:
        assert wrote  # the fault came after the last call: nothing failed
    _bundle(target, "m")  # the next write succeeds and cleans what the failed one could not
    assert _version(target) == "m"
    leftovers = [p.name for p in target.parent.iterdir() if p.name != "b"]
    assert not leftovers, leftovers


@SLOW
@given(at=st.integers(1, 12), code=FAULTS)
def test_a_file_write_that_fails_anywhere_leaves_the_old_file(tmp_path_factory, monkeypatch, at, code):
    folder = tmp_path_factory.mktemp("files")
    target = write_file(folder / "y.npz", lambda f: np.savez(f, y=np.zeros(3)))
    with monkeypatch.context() as patch:
        _Faults(patch, at, code)
        try:
            write_file(target, lambda f: np.savez(f, y=np.ones(1000)))
        except DiskError:
            pass
    with np.load(target) as data:
        assert data["y"].shape in ((3,), (1000,))
    assert [p.name for p in folder.iterdir()] == ["y.npz"]


WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_faults import _bundle
target, version = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
while True:
    _bundle(target, version, 1 << 20)
"""


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay_ms=st.integers(50, 1500))
def test_kill_9_at_any_moment_and_two_writers_leave_a_whole_bundle(tmp_path_factory, delay_ms):
    target = _bundle(tmp_path_factory.mktemp("kill") / "b", "o", 1 << 20)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), v, str(ROOT / "tests")],
                                stdout=subprocess.PIPE, text=True) for v in ("a", "z")]
    try:
        for w in writers:
            assert w.stdout.readline().strip() == "ready"
        time.sleep(delay_ms / 1000)
        assert _version(target) in ("o", "a", "z")  # while both write: a reader sees a whole bundle
    finally:
        for w in writers:
            w.send_signal(signal.SIGKILL)
            w.wait(10)
    assert _version(target) in ("o", "a", "z")
    _bundle(target, "n")  # the next writer cleans what the killed ones left beside it
    assert _version(target) == "n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b"]


def _row(i: int) -> dict:
    return {"config_id": f"c{i}", "accuracy": i / 10, "energy_j": float(i)}


@SLOW
@given(rows=st.integers(1, 12), cut=st.floats(0, 1), at=st.integers(1, 6), code=FAULTS)
def test_a_resumed_sweep_table_has_every_row_once(tmp_path_factory, monkeypatch, rows, cut, at, code):
    """Rows appended, the last line torn by a kill at any byte, a failing rewrite on resume: the table keeps
    every whole row exactly once."""
    folder = tmp_path_factory.mktemp("sweep")
    with ResultTable(folder) as table:
        for i in range(rows):
            table.add(_row(i))
    jsonl = folder / JSONL
    data = jsonl.read_bytes()
    jsonl.write_bytes(data[: int(len(data) * cut)])  # kill -9 while appending
    whole = [json.loads(line)["config_id"] for line in jsonl.read_text().splitlines()
             if line.endswith("}") and line.startswith("{")]
    with monkeypatch.context() as patch:  # the resume's rewrite fails at any point: the file stays as it was
        _Faults(patch, at, code)
        try:
            ResultTable(folder).close()
        except DiskError:
            assert jsonl.read_bytes() == data[: int(len(data) * cut)]
    with ResultTable(folder) as table:
        assert sorted(table.rows) == sorted(set(whole))
        for i in range(rows):
            table.add(_row(i))
    lines = [json.loads(line)["config_id"] for line in jsonl.read_text().splitlines()]
    assert sorted(lines) == sorted(f"c{i}" for i in range(rows))
    assert len((folder / CSV).read_text().splitlines()) == rows + 1


def test_two_sweeps_into_one_folder_are_refused(tmp_path):
    with ResultTable(tmp_path):
        with pytest.raises(UsageError, match="in use by another sweep"):
            ResultTable(tmp_path)
    ResultTable(tmp_path).close()  # free again once the first one ended


POOL = """
import os, sys, time
from neurodeploy.parallel.executor import map_tasks

def task(t, shared):
    print(os.getpid(), flush=True)
    time.sleep(600)

if __name__ == "__main__":
    for _ in map_tasks(task, [1, 2], None, workers=2):
        pass
"""


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    (tmp_path / "pool.py").write_text(POOL)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "pool.py")], stdout=subprocess.PIPE, text=True,
                              cwd=tmp_path)
    workers = [int(parent.stdout.readline()) for _ in range(2)]
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "pool workers outlived their parent"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
