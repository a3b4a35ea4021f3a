"""The Loihi 2 estimate held against a measured chip: lava-dl's PilotNet LIF benchmark.

The network (``network.net``), a real driving frame (``image.npy``, written by lava-dl as the input layer's
bias) and lava-dl's ground-truth spikes come from ``../shared/cases/netx/pilotnet_lif`` (lava-dl @ d825ac5,
``tests/lava/lib/dl/netx/gts/pilotnet_lif``). The measurements below are lava-dl's
``tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb`` as committed at three lava-dl commits, measured on
a Loihi 2 board (Oheo Gulch, one chip; 16 steps per frame; energy per frame = power / frame rate); the
Loihi 2 compiler placed the network on 74 cores. No figure of the profile is fitted to this case: each one
carries its own source (``hw_profiles/loihi2.json``).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CASES

from neurodeploy.cli import main
from neurodeploy.profiles import load_profile

PILOTNET = CASES / "netx" / "pilotnet_lif"
STEPS = 16
MEASURED = {  # lava-dl commit: (dynamic energy J, total energy J, time per frame s) per frame
    "76c8fbb": (0.562e-3, 0.991e-3, 2.41e-3),
    "baa23ad": (1.071e-3, 1.818e-3, 2.42e-3),
    "b9e3691": (1.094e-3, 1.661e-3, 2.45e-3),
}
MEASURED_CORES = 74


@pytest.fixture(scope="module")
def pilotnet(tmp_path_factory):
    """The .net compiled unchanged for loihi2 through the CLI, and the frame (C, H, W) as one sample."""
    root = tmp_path_factory.mktemp("pilotnet")
    assert main(["compile", str(PILOTNET / "network.net"), "--out", str(root / "bundle")]) == 0
    frame = np.load(PILOTNET / "image.npy").transpose(2, 1, 0)[None]  # lava's (W, H, C) -> (1, C, H, W)
    np.save(root / "frame.npy", frame)
    return root


def test_the_frame_drives_the_input_layer_as_lava_dl_does(pilotnet):
    """Input-layer spikes equal lava-dl's ground truth step for step; the first two convs' equal it one and two
    steps later (each synapse layer's delay, which neurodeploy's outputs are aligned for)."""
    import neurodeploy as nd

    run = nd.cosimulate(pilotnet / "bundle", np.load(pilotnet / "frame.npy"), steps=STEPS, mode="fixed",
                        backend="emulator")
    for pop, truth, delay in (("layer0", "input", 0), ("layer1", "conv-0", 1), ("layer2", "conv-1", 2)):
        ours = np.moveaxis(run.spikes[pop][0], 0, -1).transpose(2, 1, 0, 3)  # (W, H, C, T), as lava stores it
        want = np.load(PILOTNET / f"{truth}.npy")[..., delay:STEPS]
        assert want.sum() > 10_000
        np.testing.assert_array_equal(ours[..., :STEPS - delay], want, err_msg=pop)


def test_estimate_within_2x_of_the_measured_chip(pilotnet, capsys):
    capsys.readouterr()
    assert main(["energy", str(pilotnet / "bundle"), "--input", str(pilotnet / "frame.npy"), "--steps", str(STEPS),
                 "--mode", "fixed", "--backend", "emulator", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    terms = report["energy_j"]["terms"]
    dynamic = sum(v for k, v in terms.items() if k.startswith("neuromorphic.") and k != "neuromorphic.static")
    measured = np.mean(list(MEASURED.values()), axis=0)
    ratios = {"dynamic energy": dynamic / measured[0], "total energy": report["energy_j"]["total"] / measured[1],
              "time per frame": report["latency_s"]["total"] / measured[2]}
    assert all(0.5 <= r <= 2.0 for r in ratios.values()), ratios
    bundle = json.loads((pilotnet / "bundle" / "manifest.json").read_text())
    cores = bundle["spiking"]["resources"]["cores"]
    assert MEASURED_CORES / 1.5 <= cores <= MEASURED_CORES * 1.5, cores


def test_chip_budget_is_a_named_error(pilotnet, capsys):
    capsys.readouterr()
    assert main(["compile", str(PILOTNET / "network.net"), "--out", str(pilotnet / "x"), "--max-chips", "1"]) == 0
    one_line = capsys.readouterr()
    tiny = load_profile("loihi2").model_dump()
    tiny["resources"]["cores_per_chip"]["value"] = 16
    (pilotnet / "tiny.json").write_text(json.dumps(tiny))
    assert main(["compile", str(PILOTNET / "network.net"), "--out", str(pilotnet / "y"), "--profile",
                 str(pilotnet / "tiny.json"), "--max-chips", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "ModelDoesNotFitError" in err and "> 2 chip(s)" in err and "layer1" in err and "\n" not in err
    assert not (pilotnet / "y").exists() and one_line


def test_profile_labels_match_their_sources():
    """SANA-FE's per-event figures are SPICE simulations of Loihi 1 (its file's header): never 'measured';
    on Loihi 2 every per-event figure is an estimate; the one measured figure is the board's static power."""
    for name in ("loihi1_silicon", "loihi2"):
        prof = load_profile(name)
        for section in ("energy", "timing"):
            for key, fig in (getattr(prof, section).model_dump() or {}).items():
                if fig is None:
                    continue
                if "SANA-FE" in fig["source"]:
                    assert fig["label"] != "measured", (name, key)
                if name == "loihi2" and key != "static_w":
                    assert fig["label"] in ("estimate", "derived"), (name, key)
    assert load_profile("loihi2").energy.static_w.label == "measured"


def test_host_input_is_priced_apart_and_flagged_when_it_bounds(pilotnet):
    """The frame crosses once as 16-bit bias words (not every step's values as events); a run whose input takes
    longer than the chip's steps is flagged input-bound, outside the total latency."""
    from dataclasses import replace

    import neurodeploy as nd
    from neurodeploy.cost.energy_latency import counts_from_run, estimate
    from neurodeploy.spiking.resources import map_resources

    run = nd.cosimulate(pilotnet / "bundle", np.load(pilotnet / "frame.npy"), steps=STEPS, mode="fixed",
                        backend="emulator")
    counts = counts_from_run(run.plan, run.inputs, run.spikes, None, None)
    assert counts.input_bits == 16 * 3 * 66 * 200
    link = load_profile("loihi2").link
    cost = estimate(run.plan, map_resources(run.plan), counts)
    assert cost.latency_s["host_input"] == pytest.approx(link.latency_s.value + counts.input_bits / link.bandwidth_bps.value)
    assert cost.latency_s["host_input"] < cost.latency_s["neuromorphic"] and not cost.notes
    slow = estimate(run.plan, map_resources(run.plan), replace(counts, input_bits=1e9))
    assert slow.latency_s["total"] == cost.latency_s["total"] and "input-bound" in slow.notes[0]


def test_frames_into_a_layer_that_is_not_bias_driven_are_refused_on_one_line(pilotnet, capsys):
    """The SDNN PilotNet's input layer is a sigma-delta (Delta) population, not a LIF one: frames held as its bias
    would not be what it computes, so --steps is refused by name; the LIF bundle saves its outputs as a batch."""
    sdnn = PILOTNET.parent / "pilotnet_sdnn" / "network.net"
    assert main(["compile", str(sdnn), "--out", str(pilotnet / "sdnn")]) == 0
    capsys.readouterr()
    np.save(pilotnet / "sdnn_frame.npy", np.ones((1, 3, 33, 100), dtype=np.int32))  # the SDNN's input shape
    assert main(["cosim", str(pilotnet / "sdnn"), "--input", str(pilotnet / "sdnn_frame.npy"), "--steps", "4",
                 "--backend", "emulator", "--mode", "fixed"]) == 2
    err = capsys.readouterr().err.strip()
    assert "InputShapeError" in err and "not an input layer of LIF neurons" in err and "\n" not in err
    assert main(["cosim", str(pilotnet / "bundle"), "--input", str(pilotnet / "frame.npy"), "--steps", "4",
                 "--backend", "emulator", "--mode", "fixed", "--output", str(pilotnet / "out.npz"), "--json"]) == 0
    with np.load(pilotnet / "out.npz") as out:
        assert out["y"].shape[:2] == (1, 4)  # (B, T, ...): a batch of one frame
