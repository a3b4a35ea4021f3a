"""The field's own models deploy as their authors wrote them (tests/field_models.py): SpikingJelly 2.0's own
Spikformer and Spike-driven Transformer, SEW-ResNet-style residual blocks, SpikingJelly multi-step Conv-BN-LIF
layers with a ``SeqToANNContainer``, snnTorch's CSNN with BatchNorm and ``F.max_pool2d``, an snnTorch conv
front-end into Hugging Face's ``MambaModel``.

Each is compiled with no change to its code, then co-simulated on inputs not used to compile it and compared
with the unmodified model run by its own framework (SpikingJelly's ``functional.reset_net`` between batches):
0 spike mismatches on Loihi's populations, output error < 1e-4. Fixed point runs on Lava and on the emulator
with identical spikes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import field_models as fm
from conftest import on_salient_windows
import numpy as np
import pytest
import torch

import neurodeploy as nd
from neurodeploy.compiler.capture import batchnorm_problems
from neurodeploy.errors import InputShapeError, OnnxExportError, PartitionError, ScheduleError, UsageError

pytest.importorskip("spikingjelly")
pytest.importorskip("snntorch")

# case: (factory, the user's module paths that run on Loihi, a population the GPU steps, what stops Loihi's part)
CASES = {
    "spikformer": (fm.make_spikformer, {f"patch_embed.stages.{i}.{leaf}" for i in (0, 1) for leaf in
                                        ("conv_bn.block.0", "conv_bn.block.1", "neuron")},
                   "blocks.0.mlp.neuron1", "MaxPool"),
    "spike_driven_transformer": (fm.make_spike_driven_transformer, {f"patch_embed.stages.{i}.{j}" for i in range(3)
                                                                    for j in range(3)}, "patch_embed.final_lif",
                                 "MaxPool"),
    "sew_blocks": (fm.make_sew_blocks, {"stem.0", "stem.1", "stem.2"}, "block.2", "add() reading the output of stem.2"),
    "jelly_conv_bn": (fm.make_jelly_conv_bn, {"conv1", "bn1", "lif1", "block2.0", "block2.1", "lif2"}, None, None),
    "snntorch_csnn": (fm.make_snntorch_csnn, {"conv1", "bn1", "lif1"}, "lif2", "max_pool2d()"),
}


def _unmodified_output(model, x: torch.Tensor) -> np.ndarray:
    """The model's own output on time-major x, batch first (as a bundle returns it)."""
    from spikingjelly.activation_based import functional

    functional.reset_net(model)
    with torch.no_grad():
        y = model(x)
    functional.reset_net(model)
    return (y.transpose(0, 1) if y.dim() == 3 else y).double().numpy()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """case -> (model, example inputs, bundle), each compiled once for the tests of this module."""
    done = {}

    def get(case: str):
        if case not in done:
            model, x, dt_s = CASES[case][0]()
            done[case] = model, x, nd.compile(model, tmp_path_factory.mktemp(case) / "b", inputs=x, dt_s=dt_s)
        return done[case]
    return get


@pytest.mark.parametrize("case", list(CASES))
def test_a_field_model_deploys_as_written(case, compiled):
    _, on_loihi, gpu_population, stop = CASES[case]
    model, x, bundle = compiled(case)
    placed = {p.module: p for p in bundle.manifest.placement}
    leaves_on_loihi = {k for k, p in placed.items() if p.device == "loihi" and not p.reason.startswith("holds")}
    assert leaves_on_loihi == on_loihi and bundle.manifest.input_layout == "TB"
    assert all("folded into" in placed[k].reason for k in on_loihi if "BatchNorm" in type(model.get_submodule(k)).__name__)
    assert sum("folded into" in placed[k].reason for k in on_loihi) >= 1
    if gpu_population:  # a later population runs on the GPU, with what stopped Loihi's part as its reason
        assert placed[gpu_population].device == "gpu" and stop in placed[gpu_population].reason
    steps, batch = x.shape[0], 3  # a batch unlike T, inputs not used to compile
    x_new = (torch.rand(steps, batch, *x.shape[2:], generator=torch.Generator().manual_seed(7)) < 0.3).float()
    result = nd.cosimulate(bundle, x_new.numpy().astype(np.float64), model=model)  # (T, B, ...) as the model
    assert result.agreement.spike_mismatches == 0 and all(s.sum() > 0 for s in result.spikes.values())
    want = _unmodified_output(model, x_new)
    assert result.y.shape == want.shape and np.abs(result.y - want).max() < 1e-4 and want.std() > 0.01
    if case in ("jelly_conv_bn", "snntorch_csnn"):  # Lava's conv processes are slow: the small ones
        lava, emulator = (nd.cosimulate(bundle, x_new.numpy(), mode="fixed", backend=b) for b in ("lava", "emulator"))
        assert all(np.array_equal(lava.spikes[k], emulator.spikes[k]) for k in lava.spikes)
    with pytest.raises(InputShapeError, match="transpose"):  # batch-major is not this model's layout
        nd.cosimulate(bundle, x_new.transpose(0, 1).numpy())


@pytest.mark.parametrize("case", ["spikformer", "snntorch_csnn"])
def test_gpu_side_synaptic_operations_equal_neurobench_on_the_unmodified_model(case, compiled):
    """The cost report's ``gpu_sops`` (the dense part's Linear and Conv calls, ACs where fed spikes) equal
    NeuroBench 2.3.0's own ``SynapticOperations`` hooked on the unmodified model's layers that run on the GPU
    (the attention and MLP blocks' layers, fed by their LIFs' spikes), on inputs not used to compile."""
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel
    from spikingjelly.activation_based import functional

    model, x, bundle = compiled(case)
    x_new = (torch.rand(x.shape[0], 3, *x.shape[2:], generator=torch.Generator().manual_seed(11)) < 0.3).float()
    ours = nd.estimate(bundle, nd.cosimulate(bundle, x_new.numpy())).figures["gpu_sops"]
    on_loihi = {p.module for p in bundle.manifest.placement if p.device == "loihi"}
    bench = TorchModel(model)
    bench.register_hooks()
    named = {id(m): n for n, m in model.named_modules()}
    for hook in [h for h in bench.connection_hooks if named[id(h.layer)] in on_loihi]:
        hook.close()
        bench.connection_hooks.remove(hook)
    functional.reset_net(model)
    with torch.no_grad():
        preds = bench(x_new)
    functional.reset_net(model)
    theirs = SynapticOperations()(bench, preds, (x_new.transpose(0, 1), torch.zeros(3)))  # per sample: B first
    bench.cleanup_hooks()
    assert theirs["Effective_ACs"] > 0 and ours["layers"] > 0
    assert (ours["effective_acs"], ours["effective_macs"], ours["dense"]) == \
        (theirs["Effective_ACs"], theirs["Effective_MACs"], theirs["Dense"])


def test_spikformer_attention_runs_on_the_gpu_with_its_reason(compiled):
    model, _, bundle = compiled("spikformer")
    placed = {p.module: p for p in bundle.manifest.placement}
    assert placed["blocks.0.attn"].device == "gpu" and placed["blocks.0.attn"].reason.startswith("Q·K^T")
    assert placed["patch_embed.stages.0"].device == "loihi"  # a container all of whose modules run on Loihi
    assert "cut at patch_embed.stages.1.neuron is inside it" in placed["patch_embed.stages"].reason
    inside_loihi = {n for n, _ in model.named_modules() if any(n.startswith(p + ".") for p in CASES["spikformer"][1])}
    assert {name for name, _ in model.named_modules() if name} - inside_loihi == set(placed)  # e.g. a surrogate


def test_a_model_loihi_cannot_start_deploys_wholly_on_the_gpu_priced_as_such(tmp_path):
    """snnTorch: F.max_pool2d before the first Leaky. The whole model runs on the GPU with the reason (the line,
    the way out) on its first layer; its output equals the unmodified model's on new inputs; it is priced as
    the all-GPU baseline, nothing on Loihi, and its synaptic operations equal NeuroBench's own on the model."""
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    model, x, dt_s = fm.make_pool_first()
    bundle = nd.compile(model, tmp_path / "p", inputs=x, dt_s=dt_s)
    placed = {p.module: p for p in bundle.manifest.placement}
    assert bundle.manifest.gpu_only and {p.device for p in placed.values()} == {"gpu"} and set(placed) == \
        {"conv", "lif", "head"}
    why = placed["conv"].reason
    assert "max_pool2d() after conv" in why and "F.max_pool2d(self.conv(" in why and "avg pooling" in why
    assert "field_models.py:" in placed["lif"].reason
    x_new = (torch.rand(5, *x.shape[1:], generator=torch.Generator().manual_seed(3)) < 0.3).float()
    result = nd.cosimulate(bundle, x_new.numpy(), model=model)
    with torch.no_grad():
        want = model(x_new).double().numpy()
    assert result.y.shape == want.shape and np.abs(result.y - want).max() < 1e-4 and want.std() > 0.01
    assert result.agreement.max_abs_err < 1e-4 and result.spikes == {}
    figures = nd.estimate(bundle, result).figures
    e = figures["energy_j"]
    assert figures["gpu_only"] and e["neuromorphic"] == e["transfer"] == 0 and e["gpu"] > 0
    assert e["total"] == figures["baseline_gpu_only"]["energy_j"] and figures["macs"]["total"] > 0
    bench = TorchModel(model)
    bench.register_hooks()
    with torch.no_grad():
        preds = bench(x_new)
    theirs = SynapticOperations()(bench, preds, (x_new, torch.zeros(5)))
    bench.cleanup_hooks()
    ours = figures["gpu_sops"]
    assert theirs["Effective_ACs"] > 0 and (ours["effective_acs"], ours["effective_macs"], ours["dense"]) == \
        (theirs["Effective_ACs"], theirs["Effective_MACs"], theirs["Dense"])
    with pytest.raises(UsageError, match="runs wholly on the GPU.*parity"):
        nd.parity(bundle, x_new.numpy())
    with pytest.raises(ScheduleError, match="wholly on the GPU"):
        nd.cosimulate(bundle, x_new.numpy(), schedule="window")
    done = _cli_compile("make_pool_first", tmp_path / "q")
    assert done.returncode == 0 and "runs wholly on the GPU" in " ".join((done.stdout + done.stderr).split())


def _cli_compile(factory: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", "compile", f"field_models:{factory}", "--out",
                           str(out)], capture_output=True, text=True, env=env, timeout=180)


def test_code_after_the_cut_that_cannot_export_is_named_by_its_line(tmp_path):
    """No raw torch.export error reaches the user: the line that branches on a value, and what to do."""
    model, x, dt_s = fm.make_branch_on_values()
    with pytest.raises(OnnxExportError) as err:
        nd.compile(model, tmp_path / "b", inputs=x, dt_s=dt_s)
    assert "field_models.py" in str(err.value) and "if rate.sum().item() > 0.5" in str(err.value)
    assert "torch.export's rules" in str(err.value)
    done = _cli_compile("make_branch_on_values", tmp_path / "c")
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "OnnxExportError" in done.stderr and "rate.sum().item()" in done.stderr


def test_a_model_reading_both_spikes_and_membrane_is_refused_by_name(tmp_path):
    done = _cli_compile("make_spikes_and_membrane", tmp_path / "b")
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "PartitionError" in text and "after the cut at lif" in text and "spk, mem = self.lif(self.fc(" in text
    assert "read the spikes only, or the voltage only" in text


def test_a_model_that_fails_on_its_example_inputs_is_named(tmp_path):
    model, x, dt_s = fm.make_spikformer_on_one_channel()
    with pytest.raises(PartitionError, match=r"Spikformer raised RuntimeError: .*channels.*\(at .*spikingjelly.*"
                                             r"pass inputs="):
        nd.compile(model, tmp_path / "s", inputs=x, dt_s=dt_s)  # 1 channel where its stem takes 2
    done = _cli_compile("make_spikformer_on_one_channel", tmp_path / "c")
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "PartitionError" in done.stderr and "Spikformer raised RuntimeError" in done.stderr


def test_batchnorm_folds_only_in_eval_mode_after_a_conv_or_linear():
    conv, bn = torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4)
    assert "training mode" in batchnorm_problems("bn", bn.train(), conv)[0]
    assert batchnorm_problems("bn", bn.eval(), conv) == []
    assert "folds into a Conv or Linear" in batchnorm_problems("bn", bn.eval(), torch.nn.ReLU())[0]


def test_a_trained_conv_bn_front_end_keeps_its_decisions_in_fixed_point(tmp_path):
    """Trained on a task (quadrant of highest event rate, 100 % accurate in float), compiled with calibration:
    in Loihi's fixed point (emulator, bit-exact with Lava fixed_pt) it agrees with the model's top-1 on >= 95 %
    of 256 held-out samples and its hidden spikes differ from float in <= 5 % (measured: 100 %, 0.02 %)."""
    model, x, dt_s = fm.make_trained_conv_bn()
    x_test, labels = fm.quadrant_task(256, seed=9)
    with torch.no_grad():
        want = model(x_test).argmax(-1).numpy()
    assert (want == labels.numpy()).mean() >= 0.95  # the float model learned the task
    bundle = nd.compile(model, tmp_path / "c", inputs=x, dt_s=dt_s, calibration=True)
    float_run = nd.cosimulate(bundle, x_test.numpy(), backend="emulator", model=model)
    fixed_run = nd.cosimulate(bundle, x_test.numpy(), mode="fixed", backend="emulator")
    assert float_run.agreement.spike_mismatches == 0 and float_run.agreement.max_abs_err < 1e-4
    assert (fixed_run.y.argmax(-1) == want).mean() >= 0.95
    (node,) = fixed_run.spikes
    assert (fixed_run.spikes[node] != float_run.spikes[node]).sum() <= 0.05 * float_run.spikes[node].sum()
    lava = nd.cosimulate(bundle, x_test[:4].numpy(), mode="fixed", backend="lava")
    assert np.array_equal(lava.spikes[node], fixed_run.spikes[node][:4])


def test_a_conv_front_end_into_hugging_face_mamba(tmp_path):
    """The spikes cross the cut in the conv population's shape (B, T, 4, 8, 8) into the user's own code, which
    feeds Hugging Face's MambaModel through inputs_embeds (once refused with a raw ONNX Runtime rank error)."""
    pytest.importorskip("transformers")
    model, x, dt_s = fm.make_conv_into_mamba()
    bundle = nd.compile(model, tmp_path / "m", inputs=x, dt_s=dt_s, prefix_runner=True, event_threshold=85,
                        exit_threshold=0.5)  # the cut fires 67-94 spikes per window of these inputs
    x_new = (torch.rand(4, *x.shape[1:], generator=torch.Generator().manual_seed(3)) < 0.3).float()
    result = nd.cosimulate(bundle, x_new.numpy(), model=model)
    assert result.agreement.spike_mismatches == 0 and all(s.sum() > 0 for s in result.spikes.values())
    with torch.no_grad():
        want = model(x_new).numpy()
    assert np.abs(result.y - want).max() < 1e-4
    assert {p.module: p.device for p in bundle.manifest.placement}["mamba"] == "gpu"
    # streamed: Hugging Face's MambaModel re-run on the windows so far (the prefix runner), once per window
    assert bundle.manifest.dense.step_derivation.startswith("prefix runner") and result.schedule == "end"
    window = nd.cosimulate(bundle, x_new.numpy(), model=model, backend="emulator", schedule="window")
    assert np.abs(window.y - want).max() < 1e-4 and window.dense_invocations == 4 * 4
    longer = torch.cat([x_new, x_new.flip(0)], 1)  # the same bundle on 2T: the model's own output on 2T
    twice = nd.cosimulate(bundle, longer.numpy(), backend="emulator", schedule="window")
    with torch.no_grad():
        assert np.abs(twice.y - model(longer).numpy()).max() < 1e-4 and twice.dense_invocations == 4 * 8
    event = nd.cosimulate(bundle, x_new.numpy(), backend="emulator", schedule="event")
    with torch.no_grad():
        on_salient, ran = on_salient_windows(model.dense, model.spikes(x_new), 2, 85, 3)
    assert 0 < ran < 4 * 4 and event.dense_invocations == ran and np.abs(event.y - on_salient).max() < 1e-4
    exits = nd.cosimulate(bundle, x_new.numpy(), model=model, backend="emulator", schedule="window", early_exit=True)
    with torch.no_grad():
        prefix = torch.stack([model(x_new[:, : 2 * (w + 1)]) for w in range(4)], 1)
    assert np.abs(exits.y - prefix[np.arange(4), exits.exit_windows].numpy()).max() < 1e-4


def test_functional_sum_pooling_runs_on_loihi(tmp_path):
    """``F.avg_pool2d`` called as a function between two populations is sum pooling on Loihi, as nn.AvgPool2d."""
    model, x, dt_s = fm.make_functional_pooling()
    bundle = nd.compile(model, tmp_path / "f", inputs=x, dt_s=dt_s)
    assert {p.module for p in bundle.manifest.placement if p.device == "loihi"} == {"conv", "lif1", "fc", "lif2"}
    assert any(label.startswith("avg_pool2d() as AvgPool2d") and "F.avg_pool2d(s1, 2)" in label
               for label in bundle.manifest.spiking.module_paths.values())
    x_new = (torch.rand(3, *x.shape[1:], generator=torch.Generator().manual_seed(2)) < 0.3).float()
    result = nd.cosimulate(bundle, x_new.numpy(), model=model)
    assert result.agreement.spike_mismatches == 0 and all(s.sum() > 0 for s in result.spikes.values())
    with torch.no_grad():
        assert np.abs(result.y - model(x_new).numpy()).max() < 1e-4


def test_a_value_changed_in_place_between_modules_ends_loihis_part():
    """The chain follows values, not tensor objects: spikes doubled in place (``z.mul_(2)``) are not what lif1
    sends, so Loihi's part ends at lif1, the in-place operation named by its line."""
    from neurodeploy.compiler.capture import capture

    cap = capture(fm.InPlaceGain().eval(), fm._spikes(3, 5, 4, rate=0.5))
    assert [path for path, _ in cap.chain] == ["fc1", "lif1"] and cap.later_neurons == ["lif2"]
    assert cap.stop.startswith("mul_() after lif1") and "z.mul_(2)" in cap.stop


@pytest.mark.parametrize("make", [fm.make_membrane_readout, fm.make_norse_membrane_readout],
                         ids=["snntorch_mem", "norse_state_v"])
def test_a_membrane_read_after_the_cut_is_sent_by_its_population(make, tmp_path):
    """The code after the cut reads the last population's membrane (snnTorch's ``mem`` into a GRU; a norse
    state's ``v`` into a head), not its spikes: that population sends its voltage each step (graded values),
    on Lava and on the emulator alike, and the output equals the unmodified model's on new inputs. In fixed
    point the voltage crosses in the model's units (Loihi's integers over 2**6 S): Lava ``fixed_pt`` and the
    emulator agree exactly, and the voltage and the output stay within the quantization's error of float."""
    model, x, dt_s = make()
    bundle = nd.compile(model, tmp_path / "m", inputs=x, dt_s=dt_s)
    cut = bundle.manifest.spiking.outputs[bundle.manifest.spiking.cut_output]
    assert bundle.manifest.spiking.cut_reads == "v"
    assert "reads its membrane voltage" in {p.module: p for p in bundle.manifest.placement}["lif2"].reason
    x_new = (torch.rand(4, *x.shape[1:], generator=torch.Generator().manual_seed(3)) < 0.3).float()
    with torch.no_grad():
        want = model(x_new).double().numpy()
    runs = [nd.cosimulate(bundle, x_new.numpy(), model=model, backend=b) for b in ("lava", "emulator")]
    for result in runs:
        assert result.agreement.spike_mismatches == 0 and np.abs(result.y - want).max() < 1e-4 and want.std() > 0.01
        assert result.spikes[cut].dtype == np.float64 and len(np.unique(result.spikes[cut])) > 10  # voltages
    assert np.abs(runs[0].spikes[cut] - runs[1].spikes[cut]).max() < 1e-9
    assert nd.estimate(bundle, runs[1]).energy_j["transfer"] > 0
    lava, emulator = (nd.cosimulate(bundle, x_new.numpy(), mode="fixed", backend=b, model=model)
                      for b in ("lava", "emulator"))
    assert all(np.array_equal(lava.spikes[k], emulator.spikes[k]) for k in lava.spikes)
    assert np.abs(lava.y - emulator.y).max() < 1e-6 and emulator.agreement.spike_mismatches == 0
    v_float = runs[1].spikes[cut]
    assert 0 < np.abs(emulator.spikes[cut] - v_float).max() < 1e-3 * np.abs(v_float).max()  # model units
    assert np.abs(emulator.y - want).max() < 1e-3


def test_a_spikformer_written_as_the_original_repository_deploys(tmp_path):
    """The original Spikformer's idiom (tests/field_models.py): a batch-major input the model permutes to
    time-major itself, then folds into the batch for each Conv -> BatchNorm. The stem's first Conv-BN-LIF runs
    on Loihi (BatchNorm folded), its MaxPool starts the GPU part, the attention's LIFs run there."""
    from spikingjelly.activation_based import functional

    model, x, dt_s = fm.make_original_style_spikformer()
    bundle = nd.compile(model, tmp_path / "s", inputs=x, dt_s=dt_s)
    placed = {p.module: p for p in bundle.manifest.placement}
    assert bundle.manifest.input_layout == "BT"
    assert {k for k, p in placed.items() if p.device == "loihi"} == {"stem0", "stem0.conv", "stem0.bn", "stem0.lif"}
    assert "folded into stem0.conv" in placed["stem0.bn"].reason
    assert placed["q.lif"].device == placed["attn_lif"].device == "gpu" and "MaxPool" in placed["attn_lif"].reason
    x_new = (torch.rand(3, *x.shape[1:], generator=torch.Generator().manual_seed(7)) < 0.3).float()
    result = nd.cosimulate(bundle, x_new.numpy(), model=model)
    functional.reset_net(model)
    with torch.no_grad():
        want = model(x_new).double().numpy()
    assert result.agreement.spike_mismatches == 0 and all(s.sum() > 0 for s in result.spikes.values())
    assert np.abs(result.y - want).max() < 1e-4 and want.std() > 0.01
