"""Every sub-command, given bad arguments, bad files or models Loihi cannot run, exits 2 with one named line.

No traceback, no hang. The same bundles also check that ``energy`` and ``report`` price a feedback
bundle's own schedule (``window``) and its early exits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.cli import main

BAD_MODELS = textwrap.dedent("""
    import torch
    from torch import nn
    import snntorch as snn
    from neurodeploy.models.backends import StreamingBackend

    def _model(*middle):
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), *middle, snn.Leaky(beta=0.9, init_hidden=False,
                             reset_mechanism="zero", reset_delay=False), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
                             snn.Leaky(beta=0.8, reset_mechanism="zero", reset_delay=False),
                             StreamingBackend(8, 2, 4, ["cfc"], d_model=8))

    def maxpool():
        return _model(nn.MaxPool2d(2)), (torch.rand(2, 8, 2, 8, 8) < 0.3).float(), 1e-3

    def batchnorm():
        return _model(nn.BatchNorm2d(4), nn.AvgPool2d(2)), (torch.rand(2, 8, 2, 8, 8) < 0.3).float(), 1e-3

    def not_a_model():
        return 42

    def raises():
        raise RuntimeError("the user's factory failed")
""")


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_bundle):
    """Bad and good inputs for the commands, and a module of unsupported models on sys.path."""
    root = tmp_path_factory.mktemp("cli")
    (root / "bad_models.py").write_text(BAD_MODELS)
    sys.path.insert(0, str(root))
    (root / "garbage.npy").write_bytes(b"not numpy")
    (root / "garbage.nir").write_bytes(b"\x89HDF\r\n garbage")
    np.save(root / "wrong_shape.npy", np.zeros((3, 5, 7)))
    np.savez(root / "no_labels.npz", x=np.zeros((2, 16, 16)))
    np.savez(root / "data.npz", x=np.zeros((2, 16, 16)), labels=np.zeros(2, dtype=np.int64))
    (root / "not_a_bundle").mkdir()
    (root / "bad_manifest").mkdir()
    (root / "bad_manifest" / "manifest.json").write_text("{")
    (root / "gpu_as_loihi.json").write_text(json.dumps({"name": "x", "kind": "gpu"}))
    wide = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([5000])}),
                               "fc": nir.Linear(weight=np.ones((2, 5000))),
                               "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
                               "output": nir.Output(output_type={"output": np.array([2])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1.0},
                        type_check=False)
    nir.write(str(root / "wide.nir"), wide)
    undated = nir.NIRGraph(nodes={**wide.nodes, "fc": nir.Linear(weight=np.ones((2, 5)))}, edges=wide.edges,
                           type_check=False)
    undated.nodes["input"] = nir.Input(input_type={"input": np.array([5])})
    nir.write(str(root / "undated_if.nir"), undated)
    yield {"root": root, "bundle": str(demo_bundle)}
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def feedback_bundle(tmp_path_factory):
    """A FeedbackHybrid with early exits: it deploys with the window schedule only."""
    import neurodeploy as nd
    from neurodeploy.models.backends import StreamingBackend
    from neurodeploy.models.feedback import FeedbackHybrid
    from neurodeploy.models.neurons import LIFCell

    torch.manual_seed(0)
    front = torch.nn.Sequential(torch.nn.Linear(6 + 2, 12), LIFCell(12, du=0.5, dv=0.25), torch.nn.Linear(12, 8),
                                LIFCell(8, dv=0.2))
    with torch.no_grad():
        front[0].weight.mul_(2.5)
        front[2].weight.mul_(2.5)
    model = FeedbackHybrid(front, StreamingBackend(8, 3, 4, ["cfc"], d_model=8, exit_threshold=0.4), n_fb=2,
                           latency_steps=2)
    x = (torch.rand(3, 16, 6, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    return str(nd.compile(model, tmp_path_factory.mktemp("fb") / "fb", inputs=x).path)


def _bad_cases(f: dict, fb: str) -> list[list[str]]:
    r, b = f["root"], f["bundle"]
    return [
        [], ["nope"], ["compile"], ["cosim"], ["cosim", b, "--mode", "wrong"], ["evaluate", b],
        ["energy", b, "--schedule", "never"], ["compile", "tiny_hybrid", "--out", str(r / "x"), "--samples", "many"],
        ["cosim", str(r / "missing")], ["cosim", str(r / "not_a_bundle")], ["energy", str(r / "bad_manifest")],
        ["report", str(r / "not_a_bundle"), "--html", str(r / "r.html")],
        ["energy", b, "--loihi", "loihi9"], ["energy", b, "--gpu", "loihi2"],
        ["energy", b, "--loihi", str(r / "gpu_as_loihi.json")],
        ["cosim", b, "--input", str(r / "garbage.npy")], ["cosim", b, "--input", str(r / "wrong_shape.npy")],
        ["cosim", b, "--input", str(r / "missing.npy")], ["cosim", b, "--early-exit"],
        ["evaluate", b, "--data", str(r / "garbage.npy")], ["evaluate", b, "--data", str(r / "no_labels.npz")],
        ["evaluate", b, "--data", str(r / "data.npz"), "--chunk", "0"],
        ["evaluate", b, "--data", str(r / "data.npz"), "--model", "no_such_model"],
        ["benchmark", b], ["benchmark", b, "--data", str(r / "no_labels.npz")],
        ["benchmark", b, "--data", str(r / "data.npz"), "--price-samples", "0"],
        ["benchmark", b, "--data", str(r / "data.npz"), "--gpu", "no_such_gpu"],
        ["compile", "bad_models:maxpool", "--out", str(r / "x")],
        ["compile", "bad_models:batchnorm", "--out", str(r / "x")],
        ["compile", "bad_models:not_a_model", "--out", str(r / "x")],
        ["compile", "bad_models:raises", "--out", str(r / "x")],
        ["compile", "bad_models:absent", "--out", str(r / "x")], ["compile", "no_module:f", "--out", str(r / "x")],
        ["compile", "no_such_model", "--out", str(r / "x")],
        ["compile", "tiny_hybrid", "--out", str(r / "x"), "--weights", str(r / "garbage.npy")],
        ["compile", str(r / "wide.nir"), "--out", str(r / "x")],
        ["compile", str(r / "garbage.nir"), "--out", str(r / "x")],
        ["compile", str(r / "missing.nir"), "--out", str(r / "x")],
        ["compile", str(r / "wide.nir"), "--out", str(r / "x"), "--profile", "loihi9"],
        ["compile", str(r / "wide.nir"), "--out", str(r / "x"), "--weights", "w.pt"],
        ["compile", str(r / "wide.nir"), "--out", str(r / "x"), "--fix", "bogus"],
        ["compile", str(r / "wide.nir"), "--out", str(r / "x"), "--discretisation", "rk4"],
        ["compile", str(r / "undated_if.nir"), "--out", str(r / "x")],
        ["parity", str(r / "garbage.nir"), "--input", str(r / "wrong_shape.npy")],
        ["parity", b, "--input", str(r / "garbage.npy")],
        ["energy", fb, "--schedule", "end"], ["report", fb, "--schedule", "event"],
        ["cosim", b, "--backend", "emulator", "--device", "gpu"],
        *([["evaluate", b, "--data", str(r / "data.npz"), "--device", "cuda"]] if not torch.cuda.is_available() else []),
    ]


def _expect_named_error(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err and len(lines) == 1 and "error: " in lines[0], (argv, err)
    return lines[0]


def test_every_bad_call_is_one_named_line_and_exit_2(files, feedback_bundle, capsys):
    messages = {" ".join(argv): _expect_named_error(capsys, argv) for argv in _bad_cases(files, feedback_bundle)}

    def said(*words: str) -> str:
        return next(m for argv, m in messages.items() if all(w in argv for w in words))

    maxpool = said("bad_models:maxpool")
    assert "PartitionError" in maxpool and "1: MaxPool" in maxpool  # the module's name in the user's model
    assert "BatchNorm" in said("bad_models:batchnorm")
    assert "ModelDoesNotFitError" in messages[f"compile {files['root'] / 'wide.nir'} --out {files['root'] / 'x'}"]
    assert "ScheduleError" in said("energy", feedback_bundle)
    assert "ProfileError" in said("--loihi", "loihi9") and "FactoryError" in said("bad_models:raises")
    assert "exporter fix 'bogus' is unknown" in said("--fix", "bogus")
    assert "no dt in the graph or the call" in said("undated_if.nir") and "--dt 1" in said("undated_if.nir")


TOKENS = ["--input", "--mode", "--schedule", "--backend", "--loihi", "--gpu", "--json", "--early-exit", "--out",
          "--data", "--chunk", "--dt", "--profile", "fixed", "window", "emulator", "-1", "0", "nan", "x.npy", ""]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["compile", "cosim", "energy", "report", "evaluate", "benchmark", "parity", "demo"]),
       rest=st.lists(st.sampled_from(TOKENS), max_size=6))
def test_random_bad_arguments_are_named_errors(files, capsys, command, rest):
    """Whatever else is given, a missing bundle or file makes each call fail fast with one named line."""
    target = str(files["root"] / "missing")
    argv = [command, target, *rest] if command != "demo" else [command, "--samples", "x", *rest]
    if command == "compile":
        argv += ["--out", str(files["root"] / "y")]
    _expect_named_error(capsys, argv)


def test_the_installed_command_exits_2_without_traceback(files):
    env = {**os.environ, "PYTHONPATH": str(files["root"])}
    for argv in (["compile", "bad_models:maxpool", "--out", str(files["root"] / "x")],
                 ["energy", files["bundle"], "--loihi", "loihi9"], ["cosim", str(files["root"] / "missing")]):
        done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", *argv], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_energy_and_report_price_a_feedback_bundle_with_its_own_schedule(feedback_bundle, tmp_path, capsys):
    assert main(["energy", feedback_bundle, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schedule"] == "window" and data["dense_invocations"] == 3 * 4  # once per window
    assert data["agreement"]["spike_mismatches"] == 0 and data["energy_j"]["total"] > 0
    assert main(["energy", feedback_bundle, "--json", "--early-exit"]) == 0
    exits = json.loads(capsys.readouterr().out)["early_exit"]
    assert exits["energy_j"]["full"] == pytest.approx(data["energy_j"]["total"])
    assert main(["report", feedback_bundle, "--early-exit", "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "schedule window" in out and "early exit" in out and (tmp_path / "r.html").is_file()
