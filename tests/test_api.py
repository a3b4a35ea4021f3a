"""The whole flow through the public API only, against the CLI's JSON on the same bundle.

compile -> cosimulate -> estimate -> write_report -> evaluate, on a zoo model and on a .nir file of the
NIR paper; every priced figure the API returns must equal what ``neurodeploy ... --json`` prints.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CASES

import neurodeploy as nd
from neurodeploy.cli import main
from neurodeploy.errors import NeurodeployError, UsageError

LIF_NIR = CASES / "nir" / "01_lif" / "lif_norse.nir"
PRICED = ("sops", "macs", "spike_rate", "spikes_per_step", "latency_s", "energy_j", "baseline_gpu_only", "tiers_j",
          "agreement", "profiles", "assumptions", "schedule", "mode", "backend", "num_samples", "num_steps",
          "dense_invocations", "layer_names", "quantization")


def _cli_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _same_figures(api: dict, cli: dict) -> None:
    for key in PRICED:
        assert api.get(key) == cli.get(key), key


def test_public_api_names_the_flow():
    assert set(nd.__all__) >= {"compile", "load", "cosimulate", "estimate", "evaluate", "parity", "write_report",
                               "NeurodeployError"}
    assert issubclass(UsageError, NeurodeployError)


def test_zoo_model_through_the_api_equals_the_cli(mamba_bundle, tmp_path, capsys):
    bundle = nd.load(mamba_bundle)  # nd.compile("tiny_mamba", ...), once per session
    assert bundle.manifest.default_schedule == "window"  # a streaming back-end deploys window by window
    assert bundle.manifest.spiking.quantization and bundle.manifest.spiking.resources["profile"] == "loihi2"
    assert bundle.manifest.spiking.module_paths["1"] == "1 (Leaky)"  # the user's module path and type
    result = nd.cosimulate(bundle, mode="fixed", backend="emulator")
    assert result.schedule == "window"
    cost = nd.estimate(bundle, result)
    assert cost.energy_j["total"] > 0 and cost.sops["effective"] > 0
    cli = _cli_json(capsys, ["energy", str(bundle.path), "--mode", "fixed", "--backend", "emulator", "--json"])
    _same_figures(cost.as_dict(), cli)

    html = nd.write_report(bundle, result, cost, tmp_path / "r.html")
    assert html.read_text().count("data:image/png;base64,") == 7  # with the emulator stream's measured timeline
    assert "1 (Leaky)" in html.read_text()  # layers under the user's names
    written = json.loads(nd.write_report(bundle, result, cost, tmp_path / "r.json").read_text())
    _same_figures(written, cli)

    x = bundle.reference_inputs()
    labels = np.zeros(len(x), dtype=np.int64)
    evaluation = nd.evaluate(bundle, x, labels)
    np.savez(tmp_path / "d.npz", x=x, labels=labels)
    cli_eval = _cli_json(capsys, ["evaluate", str(bundle.path), "--data", str(tmp_path / "d.npz"), "--json"])
    assert evaluation.agreement == 1.0 and evaluation.schedule == "window"
    assert {k: v for k, v in evaluation.as_dict().items() if k != "wall_s"} == \
        {k: v for k, v in cli_eval.items() if k != "wall_s"}


def test_nir_file_through_the_api_equals_the_cli(tmp_path, capsys):
    bundle = nd.compile(LIF_NIR, tmp_path / "lif")
    x = np.zeros((2, 50, 1))
    x[:, ::7] = 1.0
    np.save(tmp_path / "x.npy", x)
    result = nd.cosimulate(bundle, x, mode="fixed", backend="lava")
    cost = nd.estimate(bundle, result)
    cli = _cli_json(capsys, ["energy", str(bundle.path), "--input", str(tmp_path / "x.npy"), "--mode", "fixed",
                             "--json"])
    _same_figures(cost.as_dict(), cli)
    assert cost.figures["schedule"] == "end" and cost.sops["total"] > 0
    report = nd.parity(bundle, x[0])
    assert report.layers and all(v == 0 for layer in report.layers for v in layer.mismatches.values() if v is not None)


def test_api_refuses_what_does_not_apply(tmp_path):
    with pytest.raises(UsageError, match="inputs="):
        from torch import nn

        nd.compile(nn.Linear(2, 2), tmp_path / "x")
    with pytest.raises(UsageError, match="neither a bundled model"):
        nd.compile("no_such_model", tmp_path / "x")
    with pytest.raises(UsageError, match="weights does not apply"):
        nd.compile(LIF_NIR, tmp_path / "x", weights="w.pt")


def test_cli_version_factories_from_the_current_folder_and_torch_labels(tmp_path, demo_bundle):
    """``--version``; ``neurodeploy compile my_models:make ...`` from the folder holding ``my_models.py`` (the
    console script does not put the current folder on the path by itself); ``nd.evaluate`` takes tensors."""
    import shutil
    import subprocess
    import sys

    import torch

    from neurodeploy._version import __version__

    command = [str(Path(sys.executable).with_name("neurodeploy"))]
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"neurodeploy {__version__}"
    shutil.copyfile(Path(__file__).with_name("ordinary_models.py"), tmp_path / "my_models.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([*command, "compile", "my_models:make_synaptic_scan", "--out", "b"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    bundle = nd.load(demo_bundle)
    x = torch.as_tensor(bundle.reference_inputs())
    labels = torch.as_tensor(np.argmax(bundle.reference_outputs()["y"], -1))
    assert nd.evaluate(bundle, x, labels, mode="float").accuracy == 1.0


def test_results_read_as_a_person_reads_them(demo_bundle):
    """What the API returns prints with units and at most 4 significant digits: no raw floats, dicts or
    object addresses."""
    import re

    bundle = nd.load(demo_bundle)
    result = nd.cosimulate(bundle, backend="emulator", schedule="end")
    cost = nd.estimate(bundle, result)
    x, labels = bundle.reference_inputs(), np.argmax(bundle.reference_outputs()["y"], -1)
    evaluation = nd.evaluate(bundle, x, labels, mode="float")
    for text in (repr(bundle), repr(result), repr(result.agreement), repr(cost), repr(evaluation)):
        assert " object at 0x" not in text and "{" not in text, text
        assert not re.search(r"\d\.\d{5,}", text), text  # no float printed to more digits than it is worth
    assert "0 spike mismatches" in repr(result.agreement) and "J" in repr(cost) and "%" in repr(evaluation)
    # in Jupyter: HTML tables under the user's module names, and DataFrames with full-precision numbers
    for shown in (bundle, result, cost, evaluation):
        page = shown._repr_html_()
        assert page.startswith("<table>") and "{" not in page and not re.search(r"\d\.\d{5,}", page), page
    names = [bundle.manifest.spiking.module_paths[p] for p in result.spikes]  # "frontend.layers.1 (LIFCell)"
    assert all(n in result._repr_html_() and n.split(" (")[0] in bundle._repr_html_() for n in names)
    populations = result.to_dataframe()
    assert list(populations.population) == names
    assert populations.events_per_sample.sum() == sum(np.count_nonzero(s) for s in result.spikes.values()) / 8
    devices = cost.to_dataframe().set_index("device")
    assert devices.loc["total", "energy_j"] == cost.energy_j["total"]
    assert devices.loc["all-GPU baseline", "energy_j"] == cost.baseline_gpu_only["energy_j"]
    assert evaluation.to_dataframe().iloc[0].accuracy == evaluation.accuracy
    assert set(bundle.to_dataframe().columns) == {"module", "device", "reason"}


def test_the_compile_log_names_each_pass(tmp_path):
    """A piped stderr shows no stage lines (an error stays one line); on a terminal every pass is named
    (tests/test_cli_progress.py, through a pseudo-terminal)."""
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "compile", "tiny_hybrid", "--out",
                            str(tmp_path / "b"), "--samples", "2"], capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0 and "pass 1 of 7" not in piped.stderr


def test_device_places_the_emulator_and_the_dense_part(tmp_path, monkeypatch):
    """``device="cpu"`` keeps both on the CPU (the emulator's torch device, ONNX Runtime's provider) with the
    outputs of the default; ``"cuda"`` where torch or onnxruntime has no GPU is a named error saying what
    to install; a sweep's TOML takes the same choice."""
    import torch

    from neurodeploy.errors import DependencyError
    from neurodeploy.runtime import emulator

    bundle = nd.compile("tiny_hybrid", tmp_path / "b", samples=2)
    devices = []
    runner_init = emulator.EmulatorRunner.__init__

    def spy(self, *args, **kwargs):
        runner_init(self, *args, **kwargs)
        devices.append(self.device.type)
    monkeypatch.setattr(emulator.EmulatorRunner, "__init__", spy)
    default = nd.cosimulate(bundle, backend="emulator", mode="fixed")
    on_cpu = nd.cosimulate(bundle, backend="emulator", mode="fixed", device="cpu")
    assert np.array_equal(default.y, on_cpu.y) and on_cpu.providers == ["CPUExecutionProvider"]
    assert devices[-1] == "cpu" and devices[0] == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DependencyError, match=r"sees no CUDA device.*On a GPU.*device='cpu'"):
            nd.cosimulate(bundle, backend="emulator", device="cuda")
    with pytest.raises(UsageError, match="one of auto, cpu, cuda or cuda:N"):
        nd.evaluate(bundle, bundle.reference_inputs(), np.zeros(2, dtype=np.int64), device="gpu")
    from neurodeploy.sweeps.config import load_config

    assert load_config({"model": "tiny_hybrid", "device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(UsageError, match="device"):
        load_config({"model": "tiny_hybrid", "device": "tpu"})
    _threads_are_one_choice(bundle, default, monkeypatch)


def _threads_are_one_choice(bundle, default, monkeypatch):
    """``threads=N``: torch and every ONNX Runtime session of the run compute on N threads (torch's setting is
    restored after it), with the outputs of the default; a count below 1 is a named error before any work."""
    import torch

    from neurodeploy.exporters import onnx_session

    seen, make = [], onnx_session.make_session

    def spy(*args, **kwargs):
        session = make(*args, **kwargs)
        seen.append((session.get_session_options().intra_op_num_threads, torch.get_num_threads()))
        return session
    monkeypatch.setattr(onnx_session, "make_session", spy)
    for module in ("neurodeploy.runtime.cosim_setup", "neurodeploy.runtime.dense_step"):
        monkeypatch.setattr(f"{module}.make_session", spy)
    before = torch.get_num_threads()
    one = nd.cosimulate(bundle, backend="emulator", mode="fixed", threads=1)
    assert np.array_equal(default.y, one.y) and seen and set(seen) == {(1, 1)} and torch.get_num_threads() == before
    with pytest.raises(UsageError, match="threads must be a whole number >= 1"):
        nd.cosimulate(bundle, backend="emulator", threads=0)
