"""Design-space sweeps: a zoo model over 3 cuts x 2 modes x 2 GPU profiles on its generated data, inline and
on a local Ray cluster (with one worker killed), resumed from a cut-short table; figures equal to separate
evaluate / estimate calls; the Pareto front on a hand-made table."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import live_processes

import neurodeploy as nd
from neurodeploy.errors import DependencyError, PartitionError, UsageError
from neurodeploy.analysis.pareto import pareto_front

MODEL = "liquidspikeformer"  # three spiking populations: three cuts
CONFIG = {"model": MODEL, "samples": 24, "price_samples": 8,
          "grid": {"cut": "all", "mode": ["float", "fixed"], "gpu": ["h100", "jetson_orin_nano"]}}
CUTS = ["frontend.1", "frontend.3", "frontend.6"]


def _figures(rows: list[dict]) -> dict[str, dict]:
    """Rows by configuration, without the wall-clock time (the one figure that depends on the run)."""
    return {r["config_id"]: {k: v for k, v in r.items() if k != "wall_s"} for r in rows}


@pytest.fixture(scope="module")
def inline_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep") / "inline"
    return nd.sweep(CONFIG, folder), folder


def test_one_row_per_configuration_over_three_cuts(inline_sweep):
    result, folder = inline_sweep
    assert result.computed == 12 and result.resumed == 0 and not result.failed
    assert sorted({r["cut"] for r in result.rows}) == CUTS
    assert len({r["config_id"] for r in result.rows}) == 12
    csv_lines = (folder / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 13 and csv_lines[0].startswith("config_id,cut,loihi,precision,mode")
    # moving populations to the GPU costs MACs there and saves synaptic operations on Loihi
    fixed = {r["cut"]: r for r in result.rows if r["mode"] == "fixed" and r["gpu"] == "h100"}
    assert fixed["frontend.1"]["macs_per_sample"] > fixed["frontend.3"]["macs_per_sample"] > \
        fixed["frontend.6"]["macs_per_sample"]
    assert fixed["frontend.1"]["sops_per_sample"] < fixed["frontend.6"]["sops_per_sample"]
    html = (folder / "sweep.html").read_text()
    assert html.count("data:image/png") == 2 and "Pareto front" in html
    saved = json.loads((folder / "results.json").read_text())
    assert saved["front_energy"] == [r["config_id"] for r in result.front("energy_j")]
    table = result.to_dataframe()  # in Jupyter: the table as a DataFrame, and as HTML
    assert len(table) == 12 and table.energy_j.tolist() == [r["energy_j"] for r in result.rows]
    assert result._repr_html_().count("<tr>") == 13 and result._repr_html_().count(" *</td>") == len(result.front())


def test_sampled_rows_equal_separate_evaluate_and_energy_calls(inline_sweep):
    result, folder = inline_sweep
    from neurodeploy.models import zoo

    x, labels = zoo.get(MODEL).dataset("test", 24)
    for row in (result.rows[1], result.rows[6]):  # (frontend.1, float, jetson), (frontend.3, fixed, h100)
        bundle = nd.load(folder / "bundles" / f"{row['cut'].replace('.', '-')}__loihi2__auto")
        ev = nd.evaluate(bundle, x, labels, model=MODEL, mode=row["mode"])
        assert (row["accuracy"], row["torch_accuracy"], row["agreement"], row["sops_per_sample"]) == \
            (ev.accuracy, ev.torch_accuracy, ev.agreement, ev.sops_per_sample)
        cost = nd.estimate(bundle, nd.cosimulate(bundle, x[:8], mode=row["mode"], backend="emulator"),
                           gpu=row["gpu"]).figures
        assert (row["energy_j"], row["latency_s"], row["macs_per_sample"]) == \
            (cost["energy_j"]["total"], cost["latency_s"]["total"], cost["macs"]["total"])


def test_cut_before_the_last_population_cosimulates_as_pytorch(inline_sweep):
    _, folder = inline_sweep
    bundle = nd.load(folder / "bundles" / "frontend-1__loihi2__auto")
    assert bundle.manifest.cut == "frontend.1" and bundle.manifest.dense.schedules == ["end"]
    placement = {p.module: p.device for p in bundle.manifest.placement}
    assert placement["frontend.1"] == "loihi" and placement["frontend.3"] == placement["frontend.6"] == "gpu"
    agreement = nd.cosimulate(bundle, mode="float", backend="emulator").agreement
    assert agreement.spike_mismatches == 0 and agreement.max_abs_err < 1e-4
    with pytest.raises(PartitionError, match=r"cut='frontend.2' is not a spiking population.*'frontend.6'\]"):
        nd.compile(MODEL, folder / "bad", cut="frontend.2")


def test_interrupted_sweep_resumes_and_computes_only_the_missing_rows(inline_sweep, tmp_path):
    result, folder = inline_sweep
    resumed = tmp_path / "resumed"
    shutil.copytree(folder, resumed)
    lines = (resumed / "results.jsonl").read_text().splitlines()
    kept = lines[:8] + [lines[8][: len(lines[8]) // 2]]  # 4 rows missing: 3 gone, one cut short by a kill
    (resumed / "results.jsonl").write_text("\n".join(kept))
    again = nd.sweep(CONFIG, resumed)
    assert (again.computed, again.resumed) == (4, 8)
    assert _figures(again.rows) == _figures(result.rows)
    assert len((resumed / "results.csv").read_text().splitlines()) == 13  # no row twice, the torn line gone
    assert nd.sweep(CONFIG, resumed).computed == 0


def _task_workers() -> list[int]:
    """PIDs of Ray workers executing a task now (Ray titles them ``ray::<function>``)."""
    found = []
    for pid in live_processes():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::_call"):
            found.append(pid)
    return found


def test_sweep_on_ray_with_a_killed_worker_gives_the_same_table(inline_sweep, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    result, folder = inline_sweep
    out = tmp_path / "ray"
    shutil.copytree(folder / "bundles", out / "bundles")  # the same bundles: the sweep compiles nothing
    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            busy = _task_workers()
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.02)

    scratch = tmp_path / "temp"  # the temporary folder of this process (after Ray's start) and of Ray's workers
    scratch.mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"TMPDIR": str(scratch)}})
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    try:
        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        on_ray = nd.sweep(CONFIG, out, ray="auto")
        killer.join(timeout=5)
    finally:
        ray.shutdown()
    assert killed, "no Ray worker was seen running a task"
    assert not list(scratch.glob("neurodeploy-*")), "the killed worker's unpacked bundle was left behind"
    assert not on_ray.failed and on_ray.computed == 12
    assert _figures(on_ray.rows) == _figures(result.rows)
    assert len((out / "results.csv").read_text().splitlines()) == 13


def test_evaluate_on_two_local_workers_equals_one(inline_sweep, monkeypatch, tmp_path):
    _, folder = inline_sweep
    from neurodeploy.models import zoo

    x, labels = zoo.get(MODEL).dataset("test", 24)
    bundle = folder / "bundles" / "frontend-6__loihi2__auto"
    one = nd.evaluate(bundle, x, labels, chunk=6)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this process's temporary folder
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the spawned workers'
    two = nd.evaluate(bundle, x, labels, chunk=6, workers=2)
    assert (one.accuracy, one.sops_per_sample) == (two.accuracy, two.sops_per_sample)
    left = list(tmp_path.glob("neurodeploy-*"))
    assert not left, f"the run left its workers' unpacked bundles behind: {left}"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    with pytest.raises(DependencyError, match=r"--ray needs Ray.*pip install 'neurodeploy\[ray\]'"):
        nd.evaluate(bundle, x, labels, ray="auto")


def test_pareto_front_on_a_hand_made_table():
    rows = [{"config_id": name, "accuracy": acc, "energy_j": e} for name, acc, e in [
        ("a", 0.90, 1.0), ("b", 0.95, 2.0), ("c", 0.85, 1.5),  # c: dominated by a
        ("d", 0.95, 3.0),  # d: dominated by b (same accuracy, more energy)
        ("e", 0.99, 5.0), ("f", 0.80, 0.5), ("g", 0.90, 1.0),  # g ties a: both on the front
        ("h", None, 0.1)]]  # no accuracy: left out
    assert [r["config_id"] for r in pareto_front(rows)] == ["f", "a", "g", "b", "e"]
    modes = [{**r, "mode": "fixed"} for r in rows] + [{"config_id": "float", "accuracy": 0.97, "energy_j": 1.0,
                                                       "mode": "float"}]
    assert [r["config_id"] for r in pareto_front(modes)] == ["f", "a", "g", "b", "e"]  # float: not what runs


def test_a_bad_configuration_is_a_named_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "tiny_hybrid"\nsampels = 3\n[grid]\nmode = ["fast"]\n')
    with pytest.raises(UsageError, match=r"grid.mode.0: Input should be .float. or .fixed.; sampels: Extra inputs are not permitted"):
        nd.sweep(bad, tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "sweep", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "UsageError" in done.stderr


def test_thresholds_are_set_in_memory_and_refused_where_they_do_not_apply(inline_sweep):
    from neurodeploy.errors import ScheduleError
    from neurodeploy.sweeps.tasks import with_thresholds

    _, folder = inline_sweep
    bundle = nd.load(folder / "bundles" / "frontend-6__loihi2__auto")
    own = bundle.manifest.dense.exit_threshold
    task = {"exit_threshold": 0.5, "event_threshold": "bundle", "early_exit": True}
    lower = with_thresholds(bundle, task, "window")
    assert lower.manifest.dense.exit_threshold == 0.5 and bundle.manifest.dense.exit_threshold == own
    x = bundle.reference_inputs()
    early = nd.cosimulate(lower, x, backend="emulator", early_exit=True).exit_windows
    late = nd.cosimulate(bundle, x, backend="emulator", early_exit=True).exit_windows
    assert (early <= late).all() and nd.load(bundle.path).manifest.dense.exit_threshold == own
    with pytest.raises(ScheduleError, match="exit_threshold applies with early_exit = true"):
        with_thresholds(bundle, task | {"early_exit": False}, "window")
    with pytest.raises(ScheduleError, match="event_threshold applies to the event schedule"):
        with_thresholds(bundle, task | {"event_threshold": 3}, "window")
    tail = nd.load(folder / "bundles" / "frontend-1__loihi2__auto")
    with pytest.raises(ScheduleError, match="no early exits"):
        with_thresholds(tail, task, "end")


def test_cut_all_of_a_captured_model_is_its_own_cut():
    """``cut = "all"`` over a model captured as written (no chain of cuts to choose from) sweeps its one cut
    instead of failing the whole sweep."""
    import ordinary_models as om

    from neurodeploy.sweeps.config import DEFAULT_CUT, load_config
    from neurodeploy.sweeps.run import sweep_cuts

    model = om.make_synaptic_scan()[0]
    assert sweep_cuts(load_config({"model": "x:y", "grid": {"cut": "all"}}), model) == [DEFAULT_CUT]
    flat = load_config({"model": "x:y", "grid": {"cut": "all"}})
    from neurodeploy.models import zoo

    assert sweep_cuts(flat, zoo.get(MODEL).build()) == CUTS
