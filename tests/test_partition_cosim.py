"""Partitioner and co-simulation schedules on two hybrids (transformer and Mamba back-ends)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from neurodeploy.bundle import read_bundle
from neurodeploy.compiler.partition import partition
from neurodeploy.errors import PartitionError, ScheduleError
from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.neurons import LIFCell
from neurodeploy import cosimulate
from neurodeploy.runtime.cosim import run_cosim


def _flat(*extra: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), LIFCell(16, du=0.5, dv=0.25), nn.Linear(16, 8), LIFCell(8, dv=0.1),
                         *extra, StreamingBackend(8, 3, 4, ["attention", "ssa"], d_model=16, heads=2))


def test_flat_model_is_cut_after_the_last_spiking_population_with_reasons():
    part = partition(_flat())
    assert [p.module for p in part.placement if p.device == "loihi"] == ["0", "1", "2", "3"]
    assert isinstance(part.dense, StreamingBackend)
    reasons = {p.module: p.reason for p in part.placement}
    assert reasons["4.adapter"].startswith("adapter")
    assert "Q·K^T" in reasons["4.blocks.0"] and "spike tensors" in reasons["4.blocks.1"]
    assert [p.module for p in partition(_flat(), cut="3").placement if p.device == "loihi"] == ["0", "1", "2", "3"]
    early = partition(_flat(), cut="1")  # the second population moves to the GPU, in front of the adapter
    assert [p.module for p in early.placement if p.device == "loihi"] == ["0", "1"]
    assert {p.module: p.reason for p in early.placement}["3"].startswith("spiking population after the chosen cut")


def test_unplaceable_layers_are_named():
    with pytest.raises(PartitionError, match=r"0: BatchNorm must be folded"):
        partition(nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 8), LIFCell(8)), cut="2")
    with pytest.raises(PartitionError, match=r"cut='2' is not a spiking population of the chain; valid cuts: \['1', '3'\]"):
        partition(_flat(), cut="2")
    with pytest.raises(PartitionError, match="comes before the adapter"):
        partition(nn.Sequential(nn.Linear(8, 8), LIFCell(8), nn.Linear(8, 8),
                                StreamingBackend(8, 3, 4, ["cfc"], d_model=16)))


@pytest.mark.parametrize("schedule", ["end", "window", "event"])
def test_mamba_hybrid_cosim_is_exact_for_every_schedule(mamba_bundle, schedule):
    bundle = read_bundle(mamba_bundle)
    result = cosimulate(bundle, schedule=schedule)
    assert result.y.shape[0] == 8 and result.agreement.spike_mismatches == 0
    assert result.agreement.max_abs_err < 1e-4 and result.agreement.top1_match == 1.0
    assert all(s.sum() > 0 for s in result.spikes.values())
    salient = int(bundle.reference_outputs()["salient"].sum())
    assert 0 < salient < 64  # the filter wakes the GPU for some windows, not all
    expected = {"end": 8, "window": 8 * 8, "event": salient}  # T/K = 8 windows per sample
    assert result.dense_invocations == expected[schedule]


def test_bundle_records_placement_and_schedules(mamba_bundle, demo_bundle):
    manifest = json.loads((mamba_bundle / "manifest.json").read_text())
    assert manifest["dense"]["schedules"] == ["end", "window", "event"] and manifest["dense"]["step_file"]
    assert manifest["adapter"]["kind"] == "membrane"
    assert {p["device"] for p in manifest["placement"]} == {"loihi", "gpu"}
    with pytest.raises(ScheduleError, match="window schedule needs a streaming back-end"):
        run_cosim(read_bundle(demo_bundle), schedule="window", progress=False)


def test_cli_refuses_weights_that_do_not_fit_the_factory(tmp_path):
    """A state_dict whose keys the factory's model lacks is a named error listing them (exit 2). The good path,
    a factory of the current folder with its weights, runs in tests/test_readme_own_model.py."""
    import os
    import subprocess
    import sys

    (tmp_path / "my_hybrid.py").write_text(
        "import torch\nfrom torch import nn\n"
        "from neurodeploy.models.backends import StreamingBackend\nfrom neurodeploy.models.neurons import LIFCell\n"
        "def make():\n"
        "    torch.manual_seed(3)\n"
        "    model = nn.Sequential(nn.Linear(6, 12), LIFCell(12, du=0.5, dv=0.2, vth=0.5),\n"
        "                          StreamingBackend(12, 2, 4, ['cfc'], d_model=8))\n"
        "    return model, (torch.rand(2, 16, 6) < 0.4).float(), 1e-3\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the CLI imports my_hybrid from there
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    bad = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "compile", "my_hybrid:make", "--out",
                          str(tmp_path / "c"), "--weights", str(tmp_path / "bad.pt")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "unexpected ['nope']" in bad.stderr


def test_feedback_channel_cosim_equals_pytorch(tmp_path):
    from neurodeploy.compiler.pipeline import compile_hybrid
    from neurodeploy.models.feedback import FeedbackHybrid, run_with_feedback

    torch.manual_seed(0)
    front = nn.Sequential(nn.Linear(10 + 3, 16), LIFCell(16, du=0.5, dv=0.25), nn.Linear(16, 12), LIFCell(12, dv=0.2))
    with torch.no_grad():
        front[0].weight.mul_(2.5)
        front[2].weight.mul_(2.5)
    model = FeedbackHybrid(front, StreamingBackend(12, 4, 4, ["cfc"], d_model=16), n_fb=3, latency_steps=2)
    with torch.no_grad():
        model.feedback.weight.mul_(5.0)
    x = (torch.rand(8, 32, 10, generator=torch.Generator().manual_seed(3)) < 0.25).float()
    bundle = read_bundle(compile_hybrid(model, x, tmp_path / "fb", 1e-3, "fb"))
    assert bundle.manifest.dense.schedules == ["window"] and bundle.manifest.feedback.latency_steps == 2
    result = cosimulate(bundle, schedule="window")
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-4
    with torch.no_grad():  # the feedback matters: without it the spikes are different
        model.feedback.weight.zero_()
        model.feedback.bias.zero_()
    _, silent = run_with_feedback(model.double(), x.double())
    assert (silent["1"].numpy() != result.spikes["1"]).sum() > 0
    with pytest.raises(ScheduleError, match="feedback channel"):
        run_cosim(bundle, schedule="end", progress=False)


def test_graded_input_is_not_binarised_by_lava_float():
    from conftest import CASES

    from neurodeploy.exporters.nir_read import read_plan
    from neurodeploy.runtime.lava_runner import LavaRunner
    from neurodeploy.spiking.float_simulation import simulate_float

    plan = read_plan(CASES / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir")
    x = torch.rand(40, 12, generator=torch.Generator().manual_seed(0)).double().numpy() * 1.5
    with LavaRunner(plan, len(x), "float") as run:
        got = run.run_sample(x).spikes
    want = simulate_float(plan, x)
    assert all((got[k] == want[k]).all() for k in want) and want["lif1.lif"].sum() > 0
    with LavaRunner(plan, len(x), "fixed") as run, pytest.raises(ValueError, match="binary spikes"):
        run.run_sample(x)
