"""Bundles, ``.nir``/``.net`` files and output folders are untrusted data (one test per attack a careful
reviewer tried): nothing in them is imported or run, no path in them leaves them, HDF5 storage outside
the file is refused, a worker never trusts a folder it did not write, and no write destroys what was there.
Every refusal is a named error, on the CLI one line with exit 2."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.bundle import read_bundle, sha256
from neurodeploy.errors import InputShapeError, SpikingPlanError, UnsafeFileError, UsageError

BRAILLE = Path(__file__).resolve().parents[2] / "shared" / "cases" / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir"
EVIL = """
from pathlib import Path
Path(__file__).with_name("pwned").write_text("imported")
def make():
    Path(__file__).with_name("pwned").write_text("called")
    raise SystemExit(3)
"""


def _cli(*args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _resign(bundle: Path, edit) -> None:
    """Edit the manifest (``edit(dict)``), as an attacker who rewrites it would."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture()
def copied(demo_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(demo_bundle, tmp_path / "shared" / "bundle"))


def test_a_bundle_never_imports_the_code_it_names(copied):
    """provenance.model = "evil:make" beside the bundle: cosim/energy on new inputs and evaluate run without
    importing it (agreement is then not computed, and the note says how to give the model)."""
    folder = copied.parent
    (folder / "evil.py").write_text(EVIL)
    _resign(copied, lambda m: m["provenance"].update(model="evil:make"))
    x = (np.random.default_rng(0).random((2, 32, 16)) < 0.3).astype(np.float64)
    np.save(folder / "x.npy", x)
    np.savez(folder / "data.npz", x=x, labels=np.zeros(2, dtype=np.int64))
    for args in (["cosim", copied, "--input", "x.npy", "--backend", "emulator", "--json"],
                 ["energy", copied, "--input", "x.npy", "--backend", "emulator", "--json"],
                 ["evaluate", copied, "--data", "data.npz", "--json"]):
        done = _cli(*args, cwd=folder)
        assert done.returncode == 0, done.stderr
        assert not (folder / "pwned").exists(), args
    notes = json.loads(_cli("cosim", copied, "--input", "x.npy", "--backend", "emulator", "--json",
                            cwd=folder).stdout)["notes"]
    assert any("--model evil:make" in n for n in notes)


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_a_bundle_never_reads_outside_itself(copied, tmp_path, where):
    outside = tmp_path / "outside.nir"
    shutil.copyfile(copied / "spiking.nir", outside)
    if where == "symlink":
        (copied / "spiking.nir").unlink()
        (copied / "spiking.nir").symlink_to(outside)
        field = "spiking.nir"
    else:
        field = str(outside) if where == "absolute" else os.path.relpath(outside, copied)

    def edit(m):
        m["spiking"]["file"] = field
        m["checksums"].pop("spiking.nir", None)
    _resign(copied, edit)
    with pytest.raises(UnsafeFileError, match="spiking.file"):
        read_bundle(copied)


def test_every_file_a_manifest_names_is_checksummed(copied):
    _resign(copied, lambda m: m["checksums"].pop("dense.onnx"))
    with pytest.raises(UnsafeFileError, match="without a checksum"):
        read_bundle(copied)


def _graph_with_weight(path: Path, **dataset) -> Path:
    """The small graph of :func:`_graph_nir` with its Linear weight replaced by ``create_dataset(**dataset)``."""
    _graph_nir(path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", dtype="f4", **dataset)
    return path


def _external_nir(path: Path, secret: Path) -> None:
    """A valid NIR graph whose Linear weight lives in another file (HDF5 external storage)."""
    secret.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    _graph_with_weight(path, shape=(2, 4), external=[(str(secret), 0, 32)])


def test_hdf5_external_storage_is_refused(tmp_path, copied):
    _external_nir(tmp_path / "graph.nir", tmp_path / "secret.bin")
    with pytest.raises(UnsafeFileError, match="external storage"):
        nd.compile(tmp_path / "graph.nir", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    shutil.copyfile(tmp_path / "graph.nir", copied / "spiking.nir")  # inside a bundle, re-signed: still refused
    _resign(copied, lambda m: m["checksums"].update({"spiking.nir": sha256(copied / "spiking.nir")}))
    with pytest.raises(UnsafeFileError, match="external storage"):
        nd.cosimulate(copied, backend="emulator")


def test_a_worker_never_uses_a_folder_it_did_not_write(demo_bundle, tmp_path):
    """A pre-filled cache folder named by the bundle's digest (another network) is not what a worker runs."""
    import hashlib
    import tempfile

    from neurodeploy.parallel import shipping

    blob = shipping.pack(demo_bundle)
    digest = hashlib.sha256(blob).hexdigest()
    poisoned = Path(tempfile.gettempdir()) / "neurodeploy-bundles" / digest / "bundle"
    other = nd.compile(BRAILLE, tmp_path / "other")  # another network: a spiking-only bundle (fast to compile)
    shutil.rmtree(poisoned.parent, ignore_errors=True)
    shutil.copytree(other.path, poisoned)
    try:
        shipping._LOADED.clear()
        bundle = shipping.unpack(blob)
        assert bundle.manifest.name == read_bundle(demo_bundle).manifest.name
        assert not bundle.path.is_relative_to(poisoned.parent)
        assert (bundle.path.parent.stat().st_mode & 0o077) == 0  # private to this user
    finally:
        shutil.rmtree(poisoned.parent, ignore_errors=True)


@pytest.mark.parametrize("out", ["dot", "file", "symlink", "other_files"])
def test_out_never_destroys_what_was_there(tmp_path, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.nir").write_bytes(b"keep me")
    (work / "notes.txt").write_text("a user's work")
    target = {"dot": ".", "file": "notes.txt", "symlink": "link", "other_files": "."}[out]
    if out == "symlink":
        (work / "elsewhere").mkdir()
        (work / "link").symlink_to(work / "elsewhere")
    graph = BRAILLE
    if out == "other_files":
        target = "results"
        (work / "results").mkdir()
        (work / "results" / "thesis.tex").write_text("chapter 1")
    before = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    done = _cli("compile", graph, "--out", target, cwd=work)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "Error" in done.stderr and "Traceback" not in done.stderr
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*")) == before


def test_out_replaces_an_existing_bundle(tmp_path):
    graph = BRAILLE
    first = nd.compile(graph, tmp_path / "b", precision="single")
    second = nd.compile(graph, tmp_path / "b")
    assert first.manifest.spiking.quantizer["precision"] == "single"
    assert second.manifest.spiking.quantizer["precision"] == "double"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


def test_a_huge_declared_weight_is_refused_fast(tmp_path):
    """A 31 KB file declaring 10**9 weights (chunked, compressed, never written) is refused in < 5 s, < 500 MB."""
    path = _graph_with_weight(tmp_path / "huge.nir", shape=(1000, 1_000_000), chunks=(100, 10000),
                              compression="gzip")
    assert path.stat().st_size < 64_000
    probe = ("import re, time, sys\n"  # VmHWM: this process's peak (ru_maxrss would count the forked pytest's)
             "from neurodeploy.cli import main\n"
             "t = time.perf_counter(); rc = main(['compile', sys.argv[1], '--out', sys.argv[2]])\n"
             "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
             "print(rc, time.perf_counter() - t, peak)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path), str(tmp_path / "b")], capture_output=True,
                          text=True, timeout=120)
    rc, seconds, peak_kib = done.stdout.split()
    assert rc == "2" and "UnsafeGraphFileError" in done.stderr and "memory budget" in done.stderr, done.stderr
    assert float(seconds) < 5 and int(peak_kib) < 500 * 1024


def test_declared_sample_counts_are_checked(tmp_path):
    with pytest.raises(UsageError, match="samples"):
        nd.compile("tiny_hybrid", tmp_path / "b", samples=10**8)
    with pytest.raises(UsageError, match="samples"):
        nd.compile("tiny_hybrid", tmp_path / "b", samples=0)


def test_empty_batches_and_sequences_are_named_errors(demo_bundle):
    for shape in ((0, 32, 16), (2, 0, 16)):
        with pytest.raises(InputShapeError, match="at least one"):
            nd.cosimulate(demo_bundle, np.zeros(shape), backend="emulator")


def _graph_nir(path: Path, threshold: float = 1.0, n: int = 2, output: bool = True) -> Path:
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Linear(weight=np.ones((n, 4))),
             "lif": nir.IF(r=np.ones(n), v_threshold=np.full(n, threshold), v_reset=np.zeros(n))}
    edges = [("input", "fc"), ("fc", "lif")]
    if output:
        nodes["output"] = nir.Output(output_type={"output": np.array([n])})
        edges.append(("lif", "output"))
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0}, type_check=False))
    return path


@pytest.mark.parametrize("case, match", [("threshold", "threshold"), ("empty", "no neurons"),
                                         ("no_output", "no Output")])
def test_degenerate_graphs_are_one_line_named_errors(tmp_path, case, match):
    path = _graph_nir(tmp_path / "g.nir", threshold=0.0 if case == "threshold" else 1.0,
                      n=0 if case == "empty" else 2, output=case != "no_output")
    with pytest.raises(SpikingPlanError, match=match):
        nd.compile(path, tmp_path / "b")
    done = _cli("compile", path, "--out", tmp_path / "b2", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_output_of_a_flattened_batch_holds_every_sample(tmp_path):
    """A conv bundle (the NIR paper's CNN, input (2, 34, 34)) given a flattened batch (B, T, 2312): every
    sample's outputs are saved (the batch was taken for one sample before)."""
    graph = Path(__file__).resolve().parents[2] / "shared" / "cases" / "nir" / "02_cnn" / "cnn_sinabs.nir"
    bundle = nd.compile(graph, tmp_path / "cnn", dt_s=1.0)
    x = (np.random.default_rng(1).random((3, 4, 2 * 34 * 34)) < 0.1).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    done = _cli("cosim", bundle.path, "--input", "x.npy", "--output", "y.npz", "--backend", "emulator",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "y.npz") as y:
        assert y["y"].shape[:2] == (3, 4) and all(y[k].shape[0] == 3 for k in y.files)


def test_a_closed_pipe_is_not_a_traceback(demo_bundle, tmp_path):
    command = f"{sys.executable} -m neurodeploy.cli cosim {demo_bundle} --backend emulator --json | head -c 10"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_a_full_or_read_only_disk_is_a_disk_error(monkeypatch, tmp_path):
    """ENOSPC or EROFS while writing: a DiskError naming the file and the cause; the old file stays."""
    import errno

    import neurodeploy.bundle.atomic as atomic
    from neurodeploy.errors import DiskError

    target = atomic.write_file(tmp_path / "report.html", b"old")
    for code, cause in ((errno.ENOSPC, "no space"), (errno.EROFS, "read-only")):
        def failing(fd, *args, _code=code):
            raise OSError(_code, os.strerror(_code))
        monkeypatch.setattr(atomic.os, "fsync", failing)
        with pytest.raises(DiskError, match=cause):
            atomic.write_file(target, b"new content")
        monkeypatch.undo()
        assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_checkpoints_append_what_is_new(tmp_path):
    """Bytes written grow linearly with the samples: each save appends one record (the old format rewrote
    the whole file after every sample); a torn last record is cut off on resume."""
    from neurodeploy.runtime.checkpoint import RECORDS, Checkpoint

    sizes = {}
    for n in (50, 200):
        saved = Checkpoint(tmp_path / str(n), "key")
        saved.load()
        for i in range(n):
            saved.append({"y": np.full((1, 10), i, dtype=np.float32)}, i + 1, n)
        sizes[n] = (tmp_path / str(n) / RECORDS).stat().st_size
    assert 3.9 < sizes[200] / sizes[50] < 4.1
    path = tmp_path / "200" / RECORDS
    path.write_bytes(path.read_bytes()[:-5])  # killed in the middle of the last record
    records = Checkpoint(tmp_path / "200", "key").load()
    assert len(records) == 199 and records[-1]["y"][0, 0] == 198
    assert Checkpoint(tmp_path / "200", "another key").load() == []


def test_a_killed_evaluation_resumes_to_the_same_results(demo_bundle, tmp_path, monkeypatch):
    import neurodeploy.analysis.evaluate as evaluation
    from neurodeploy.models import zoo

    x = zoo.get("tiny_hybrid").example_inputs(48, seed=3).numpy()
    labels = np.arange(48) % 4
    full = nd.evaluate(demo_bundle, x, labels, chunk=8)
    real, calls = evaluation.chunk_outcome, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) in the fourth chunk
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "chunk_outcome", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nd.evaluate(demo_bundle, x, labels, chunk=8, checkpoint=tmp_path / "ck")
    calls["n"] = -100  # no more interruptions; count the chunks the resumed run computes
    resumed = nd.evaluate(demo_bundle, x, labels, chunk=8, checkpoint=tmp_path / "ck")
    assert calls["n"] == -100 + 3  # the three chunks not finished before
    for field in ("samples", "accuracy", "torch_accuracy", "agreement", "sops_per_sample", "mean_exit_window"):
        assert getattr(resumed, field) == getattr(full, field), field


def test_errors_about_nir_nodes_name_the_users_modules(tmp_path):
    """A Leaky with threshold 0 in the user's Sequential: the design-rule error names its module, not only
    the NIR node."""
    import snntorch as snn
    import torch
    from torch import nn

    from neurodeploy.models.adapters import RateAdapter

    model = nn.Sequential(nn.Linear(6, 8), snn.Leaky(beta=0.9, threshold=0.0), RateAdapter(4), nn.Linear(8, 2))
    with pytest.raises(SpikingPlanError, match=r"1 \(Leaky\), NIR node 1: v_threshold <= 0"):
        nd.compile(model, tmp_path / "b", inputs=(torch.rand(2, 8, 6) < 0.3).float())


@pytest.mark.parametrize("shape", [(0, 32, 16), (2, 0, 16)], ids=["B=0", "T=0"])
def test_empty_inputs_are_one_line_on_the_cli(demo_bundle, tmp_path, shape):
    np.save(tmp_path / "x.npy", np.zeros(shape))
    done = _cli("cosim", demo_bundle, "--input", "x.npy", "--backend", "emulator", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "InputShapeError" in done.stderr, done.stderr


def test_kill_9_during_evaluate_checkpoint_resumes_identically(demo_bundle, tmp_path):
    from neurodeploy.models import zoo

    x = zoo.get("tiny_hybrid").example_inputs(192, seed=5).numpy()
    np.savez(tmp_path / "data.npz", x=x, labels=np.arange(192) % 4)
    args = ["evaluate", demo_bundle, "--data", "data.npz", "--chunk", "4", "--json"]
    full = json.loads(_cli(*args, cwd=tmp_path).stdout)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", *map(str, args), "--checkpoint", "ck"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress, done = tmp_path / "ck" / "progress.json", 0
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline and done < 10:
        done = json.loads(progress.read_text())["done"] if progress.exists() else 0
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    assert 0 < done < 48, "the run was not killed in the middle"
    resumed = json.loads(_cli(*args, "--checkpoint", "ck", cwd=tmp_path).stdout)
    assert {k: v for k, v in resumed.items() if k != "wall_s"} == {k: v for k, v in full.items() if k != "wall_s"}
