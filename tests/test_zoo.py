"""The trained zoo models: each compiles by name, co-simulates in Lava float with zero spike mismatches
and output error below 1e-4 against PyTorch, is priced, and beats chance on its held-out split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.models import zoo
from neurodeploy.models.zoo import datasets

HELD_OUT = 96


class _Compiled(dict):
    """name -> bundle path, each trained model compiled (with 2 reference samples) when first asked for."""

    def __init__(self, root) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, name: str):
        import neurodeploy as nd

        self[name] = nd.compile(name, self.root / name, samples=2).path
        return self[name]


@pytest.fixture(scope="module")
def zoo_bundles(tmp_path_factory):
    return _Compiled(tmp_path_factory.mktemp("zoo"))


@pytest.mark.parametrize("name", zoo.TRAINED)
def test_compiles_cosimulates_exactly_and_is_priced(name, zoo_bundles, capsys):
    import json

    from neurodeploy.cli import main

    from neurodeploy.bundle import read_bundle

    bundle = zoo_bundles[name]
    schedule = zoo.get(name).schedule
    assert read_bundle(bundle).manifest.default_schedule == schedule  # compiled by name: deployed as the zoo says
    assert main(["cosim", str(bundle), "--schedule", schedule, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["agreement"]["spike_mismatches"] == 0
    assert data["agreement"]["max_abs_err"] < 1e-4
    assert data["agreement"]["top1_match"] == 1.0
    assert data["energy_j"]["total"] > 0 and data["baseline_gpu_only"]["energy_j"] > 0
    assert data["sops"]["effective"] > 0  # the front-end is active on real samples
    assert len(data["timeline"]["windows"]) == data["num_samples"] * read_bundle(bundle).manifest.num_tokens  # streamed


@pytest.mark.parametrize("name", zoo.TRAINED)
def test_streamed_lava_fixed_point_equals_the_emulator(name, zoo_bundles):
    """Lava streaming the whole batch in fixed point, the dense part behind it: the emulator's spikes and y."""
    import neurodeploy as nd

    bundle = nd.load(zoo_bundles[name])
    lava = nd.cosimulate(bundle, mode="fixed", backend="lava")
    emulated = nd.cosimulate(bundle, mode="fixed", backend="emulator")
    assert lava.timeline is not None
    assert all(np.array_equal(s, emulated.spikes[k]) for k, s in lava.spikes.items())
    assert np.array_equal(lava.y, emulated.y)


@pytest.mark.parametrize("name", zoo.TRAINED)
def test_beats_chance_on_held_out_data_in_pytorch_and_fixed_point(name, zoo_bundles):
    from neurodeploy.analysis.evaluate import evaluate, torch_predictions
    from neurodeploy.bundle import read_bundle

    entry = zoo.get(name)
    x, labels = entry.dataset("test", HELD_OUT)
    chance = 1 / entry.num_classes
    torch_acc = float(np.mean(torch_predictions(entry.build(), x, event=entry.schedule == "event") == labels))
    fixed = evaluate(read_bundle(zoo_bundles[name]), x, labels, "emulator", "fixed", entry.schedule, progress=False)
    assert torch_acc >= chance + 0.3, (torch_acc, chance)
    assert fixed.accuracy >= chance + 0.25, (fixed.accuracy, chance)


def test_early_exit_saves_latency_and_energy(zoo_bundles):
    from neurodeploy.bundle import read_bundle
    from neurodeploy.cost.pricing import summary
    from neurodeploy.runtime.cosim import run_cosim
    from neurodeploy.runtime.early_exit import exit_windows

    bundle = read_bundle(zoo_bundles["liquidspikeformer"])
    x, _ = zoo.get("liquidspikeformer").dataset("test", 16)
    result = run_cosim(bundle, x, mode="fixed", backend="emulator", progress=False, schedule="window",
                       early_exit=True)
    ee = summary(bundle, result)["early_exit"]
    assert np.array_equal(result.exit_windows, exit_windows(result.y, bundle.manifest.dense.exit_threshold))
    assert ee["mean_exit_window"] < ee["windows"]  # some samples stop early
    assert 0 < ee["energy_j"]["saved_fraction"] < 1 and 0 < ee["latency_s"]["saved_fraction"] < 1
    assert ee["energy_j"]["with_exits"] + ee["energy_j"]["saved"] == pytest.approx(ee["energy_j"]["full"])


def test_datasets_are_deterministic_and_splits_differ():
    for make in (datasets.moving_bars, datasets.occluded_objects, datasets.burst_order, datasets.salient_patterns):
        a, la = make(8, "train")
        b, lb = make(8, "train")
        c, _ = make(8, "test")
        assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
        assert set(np.unique(a)) <= {0.0, 1.0}
    x, _ = datasets.occluded_objects(4, "test")
    assert x[:, datasets.VISIBLE_STEPS:].mean() < 0.01  # only noise while occluded (>= 30 frames)


def test_surrogate_gradients_leave_the_forward_pass_unchanged():
    from neurodeploy.models.dense_blocks import heaviside, surrogate_gradients

    x = torch.randn(100, requires_grad=True)
    plain = heaviside(x)
    with surrogate_gradients():
        trained = heaviside(x)
        trained.sum().backward()
    assert torch.equal(plain, trained) and x.grad.abs().sum() > 0


def test_energy_and_report_price_a_window_bundle_and_its_early_exits(zoo_bundles, tmp_path, capsys):
    """No --schedule: energy and report price the bundle's own schedule (window), with --early-exit too."""
    import json

    from neurodeploy.cli import main

    bundle = str(zoo_bundles["liquidspikeformer"])
    assert main(["energy", bundle, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    windows = full["num_steps"] // 4
    assert full["schedule"] == "window" and full["dense_invocations"] == full["num_samples"] * windows
    assert main(["energy", bundle, "--json", "--early-exit"]) == 0
    exits = json.loads(capsys.readouterr().out)["early_exit"]
    assert exits["energy_j"]["full"] == pytest.approx(full["energy_j"]["total"]) and exits["windows"] == windows
    assert main(["report", bundle, "--early-exit", "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "schedule window" in out and "early exit: mean exit window" in out and " µJ" in out


@pytest.mark.parametrize("name", zoo.TRAINED)
def test_spiking_part_is_bit_exact_on_the_emulator(name, zoo_bundles):
    """The emulator against Lava fixed_pt on each trained model's quantized spiking part (one test sample)."""
    from test_emulator import assert_bit_exact

    from neurodeploy.bundle import read_bundle
    from neurodeploy.exporters import load_spiking
    from neurodeploy.spiking.quantize import quantize

    bundle = read_bundle(zoo_bundles[name])
    plan = quantize(load_spiking(bundle.spiking_path, bundle.manifest.spiking.dt_s)).plan
    x, _ = zoo.get(name).dataset("test", 1)
    sample, _ = assert_bit_exact(plan, x[0].astype(np.float64))
    assert all(np.count_nonzero(s) for s in sample.raw.values())  # every population fires


def test_parity_accuracy_per_stage_of_a_hybrid_is_the_whole_models(zoo_bundles):
    """``parity --labels`` on a hybrid bundle: each stage's accuracy is the whole deployed model's (its dense
    part, on the bundle's own schedule, run on that stage's spikes at the cut), so the float and fixed stages
    equal ``evaluate``'s accuracy in those modes (it once reported the cut population's argmax: 6 % / 0 %
    for a model that scores 100 %)."""
    import neurodeploy as nd

    name = "snn_filter_transformer"
    bundle = nd.load(zoo_bundles[name])
    x, labels = zoo.get(name).dataset("test", 32)
    trace = nd.parity(bundle, x, labels=labels, backend="emulator")
    for mode in ("float", "fixed"):
        assert trace.accuracy[f"emulator_{mode}"] == nd.evaluate(bundle, x, labels, mode=mode).accuracy
    assert trace.accuracy["emulator_fixed"] > 0.9
    modules = bundle.manifest.spiking.module_paths  # the table names the user's modules, not NIR nodes
    assert [layer.module for layer in trace.layers] == [modules[layer.name] for layer in trace.layers]
    assert all("(" in layer.module for layer in trace.layers)


def test_the_all_gpu_baseline_does_not_move_with_the_mode(zoo_bundles):
    """The baseline runs the model's spiking layers densely on the GPU: their weights once each, whatever
    precision Loihi uses (a second synapse layer of precision double is Loihi's, not the model's). It once
    read 1.07 mJ in float and 1.40-2.06 mJ in fixed point for liquidspikeformer."""
    import neurodeploy as nd

    bundle = nd.load(zoo_bundles["liquidspikeformer"])
    assert bundle.manifest.spiking.quantizer["precision"] == "double"
    base = {mode: nd.estimate(bundle, nd.cosimulate(bundle, mode=mode, backend="emulator")).figures[
        "baseline_gpu_only"]["energy_j"] for mode in ("float", "fixed")}
    assert abs(base["fixed"] / base["float"] - 1) < 0.02, base
