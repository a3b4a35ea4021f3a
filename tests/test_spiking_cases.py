"""Acceptance cases of the spiking path against outside references in ../shared/cases (PROVENANCE.md)."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CASES

from neurodeploy.exporters.netx_hdf5 import read_netx, write_netx
from neurodeploy.exporters.nir_read import read_plan
from neurodeploy.runtime.lava_net import from_lava
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.spiking.quantize import quantize
from neurodeploy.spiking.resources import map_resources

NIR_CASES, NETX = CASES / "nir", CASES / "netx"


def _spike_times(x: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(x).ravel())


def test_lif_norse_matches_exact_in_float_and_real_loihi_in_fixed():
    plan = read_plan(NIR_CASES / "01_lif" / "lif_norse.nir")
    exact = np.loadtxt(NIR_CASES / "01_lif" / "lif_exact.csv", delimiter=",")
    loihi = np.loadtxt(NIR_CASES / "01_lif" / "lif_lava_loihi_fixed.csv", delimiter=",")
    x = exact[:, :1]
    np.testing.assert_array_equal(loihi[:, 0], exact[:, 0])  # the same input drove both
    results = {}
    for mode in ("float", "fixed"):
        with LavaRunner(plan, len(x), mode) as run:
            results[mode] = _spike_times(run.run_sample(x).spikes["1"])
    want_exact, want_loihi = _spike_times(exact[:, 2]), _spike_times(loihi[:, 2])
    assert len(want_exact) == 4 and len(results["float"]) == len(want_exact)
    assert np.abs(results["float"] - want_exact).max() <= 1
    assert len(results["fixed"]) == len(want_loihi)
    assert np.abs(results["fixed"] - want_loihi).max() <= 1


def test_braille_recurrent_float_is_exact_and_fixed_is_reported():
    folder = NIR_CASES / "03_rnn"
    plan = read_plan(folder / "braille_noDelay_bias_zero.nir")
    assert any(s.recurrent for s in plan.synapses)
    x = np.load(folder / "braille_test0_input_recovered.npy").astype(np.float64)
    want = np.load(folder / "snntorch_activity_noDelay_bias_zero.npy")
    with LavaRunner(plan, len(x), "float") as run:
        got = run.run_sample(x).spikes["lif1.lif"]
    assert want.sum() == 119 and np.array_equal(got, want)
    mismatches = {}
    for per_synapse, precision in ((True, "single"), (False, "single"), (True, "double")):
        q = quantize(plan, per_synapse_exponents=per_synapse, precision=precision)
        with LavaRunner(q.plan, len(x), "fixed") as run:
            mismatches[per_synapse, precision] = int(np.abs(run.run_sample(x).spikes["lif1.lif"] - want).sum())
    print(f"braille fixed-point spike mismatches vs snnTorch (of {int(want.sum())} reference spikes): 8-bit weights "
          f"with per-synapse exponents {mismatches[True, 'single']}, with a shared exponent "
          f"{mismatches[False, 'single']}; two synapses per weight {mismatches[True, 'double']}")
    assert mismatches[True, "single"] < mismatches[False, "single"]  # what per-synapse exponents buy
    assert mismatches[True, "double"] == 0 < mismatches[True, "single"]  # and precision "double" (was 108)


def _torch_reference(graph: nir.NIRGraph, x: np.ndarray) -> dict[str, np.ndarray]:
    """An independent time-stepped PyTorch interpreter of the CNN graph (IF neurons, no Lava delays)."""
    order = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]
    state: dict[str, torch.Tensor] = {}
    spikes = {n: [] for n in order if isinstance(graph.nodes[n], nir.IF)}
    for t in range(len(x)):
        h = torch.as_tensor(x[t], dtype=torch.float64)[None]
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Conv2d):
                h = F.conv2d(h, torch.as_tensor(node.weight, dtype=torch.float64),
                             torch.as_tensor(node.bias, dtype=torch.float64), tuple(node.stride), tuple(node.padding))
            elif isinstance(node, nir.SumPool2d):
                k = tuple(node.kernel_size)
                h = F.avg_pool2d(h, k, tuple(node.stride)) * (k[0] * k[1])
            elif isinstance(node, nir.Flatten):
                h = h.flatten(1)
            elif isinstance(node, nir.Affine):
                h = h @ torch.as_tensor(node.weight, dtype=torch.float64).T + torch.as_tensor(node.bias, dtype=torch.float64)
            elif isinstance(node, nir.IF):
                v = state.get(name, torch.zeros_like(h)) + torch.as_tensor(node.r, dtype=torch.float64) * h
                s = (v > torch.as_tensor(node.v_threshold, dtype=torch.float64)).double()
                state[name] = v * (1 - s)
                spikes[name].append(s[0].numpy())
                h = s
    return {n: np.stack(v) for n, v in spikes.items()}


def test_cnn_fits_one_loihi2_chip_and_float_equals_pytorch():
    path = NIR_CASES / "02_cnn" / "cnn_sinabs.nir"
    plan = read_plan(path, dt=1.0)  # sinabs writes IF(r=1) per step: dt = 1
    resources = map_resources(plan, "loihi2")
    assert resources.chips == 1 and resources.cores <= 128
    rng = np.random.default_rng(0)
    x = (rng.random((10, 2, 34, 34)) < 0.15).astype(np.float64)
    want = _torch_reference(nir.read(str(path)), x)
    with LavaRunner(plan, len(x), "float") as run:
        got = run.run_sample(x).spikes
    for name, ref in want.items():
        assert got[name].shape == ref.shape
        assert np.array_equal(got[name], ref), name
    assert want["6"].sum() > 0 and want["10"].sum() > 0  # deep layers are active


def test_netx_tinynet_fixed_matches_ground_truth():
    plan = read_netx(NETX / "tinynet" / "tiny.net")
    plan.fixed["layer0"].bias_mant = from_lava(np.load(NETX / "tinynet" / "input_bias.npy"), (3, 16, 16)).astype(int)
    steps = 17
    with LavaRunner(plan, steps, "fixed") as run:
        out = run.run_sample(np.zeros((steps, 3, 16, 16))).spikes["layer2"]
    gt = np.load(NETX / "tinynet" / "output.npy")[0]  # (36, 1, 1, 16), lava-dl's reference starts one step later
    assert gt.sum() == 92
    assert np.abs(np.moveaxis(out, 0, -1)[..., :15] - gt[..., 1:]).sum() == 0


def test_netx_pilotnet_sdnn_fixed_matches_ground_truth():
    """The emulator against lava-dl's ground truth (it is bit-exact with Lava fixed_pt on this network:
    tests/test_emulator.py runs both on the same frame; Lava's own run here took 40 s more)."""
    from neurodeploy.runtime.emulator import EmulatorRunner

    plan = read_netx(NETX / "pilotnet_sdnn" / "network.net")
    frame = from_lava(np.load(NETX / "pilotnet_sdnn" / "input.npy")[..., 0], plan.input_shape)
    steps = 9
    with EmulatorRunner(plan, steps, "fixed", device="cpu") as run:
        out = run.run_sample(np.repeat(frame[None], steps, axis=0)).raw["layer9"]
    gt = np.load(NETX / "pilotnet_sdnn" / "output.npy").ravel()
    assert np.count_nonzero(gt) == 8
    assert np.abs(out[:steps].ravel() - gt).sum() == 0


@pytest.mark.parametrize("case", ["tinynet/tiny.net", "pilotnet_sdnn/network.net"])
def test_netx_export_reads_back_identically(case, tmp_path):
    plan = read_netx(NETX / case)
    write_netx(plan, tmp_path / "out.net")
    back = read_netx(tmp_path / "out.net")
    assert [(type(a).__name__, a.name) for a in plan.layers] == [(type(b).__name__, b.name) for b in back.layers]
    for name, q in plan.fixed.items():
        for key, value in vars(q).items():
            np.testing.assert_array_equal(np.asarray(getattr(back.fixed[name], key)), np.asarray(value), err_msg=f"{name}.{key}")
