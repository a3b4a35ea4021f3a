"""The emulator against Lava itself: bit-exact with ``fixed_pt`` (every spike and every state variable),
the same spikes as ``floating_pt``, on the shared cases, the zoo models and randomised networks."""
from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from conftest import CASES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.errors import EmulatorError, UsageError
from neurodeploy.exporters.netx_hdf5 import read_netx
from neurodeploy.exporters.nir_read import read_plan
from neurodeploy.runtime import emulator
from neurodeploy.runtime.emulator import EmulatorRunner, lava_dense_weights
from neurodeploy.runtime.lava_net import from_lava
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.spiking.plan import FixedNeuron, FixedSynapse, NeuronLayer, SpikingPlan, SynapseLayer
from neurodeploy.spiking.quantize import quantize

NIR_CASES, NETX = CASES / "nir", CASES / "netx"


def run_both(plan: SpikingPlan, x: np.ndarray, mode: str):
    """(Lava's sample, Lava's final state, the emulator's run) for one sample x (T, *input_shape)."""
    with LavaRunner(plan, len(x), mode) as lava:
        sample = lava.run_sample(x)
        state = lava.final_state()
    with EmulatorRunner(plan, len(x), mode, device="cpu") as emu:
        run = emu.run_batch(x[None])
    return sample, state, run


def assert_bit_exact(plan: SpikingPlan, x: np.ndarray):
    """Zero spike mismatches (every step Lava ran, delays included) and zero state mismatches, on every one of
    the emulator's paths: the default (feed-forward plans in blocks of steps, the LIF in numba's compiled
    loop, each dense synapse's sums event-driven or as a product, as measured; a short run is one block),
    the same in blocks of 3 steps, every dense synapse's sums event-driven (blocks of 3), the GPU's
    branch-free one (run here on the CPU), blocks of 3 with the LIF and the sums in torch, step by step."""
    sample, state, run = run_both(plan, x, "fixed")
    with patch.object(emulator, "BLOCK_STEPS", (3, 3)):
        with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
            short_blocks = emu.run_batch(x[None])
        with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
            for syn in emu.synapses:
                if syn.events is not None:
                    syn.events.s_per_event, syn.events.s_per_row, syn.events.min_pairs = 0.0, 1.0, 0  # always events
            events = emu.run_batch(x[None])
        with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
            emu._compiled = lambda population: False  # as without numba
            for syn in emu.synapses:
                syn.events = None
            torch_blocks = emu.run_batch(x[None])
            emu.order = None  # as a recurrent plan, or a run that writes its input mid-run
            stepwise = emu.run_batch(x[None])
    with EmulatorRunner(plan, len(x), "fixed", device="cpu", branch_free=True) as emu:
        branch_free = emu.run_batch(x[None])
    runs = (run, short_blocks, events, branch_free, torch_blocks, stepwise)
    for got in runs:
        for name, raw in sample.raw.items():
            np.testing.assert_array_equal(got.raw[name][0], raw, err_msg=f"spikes of {name}")
        for owner, variables in state.items():
            for var, value in variables.items():
                np.testing.assert_array_equal(got.state[owner][var][0], value, err_msg=f"{owner}.{var}")
    assert all(got.saturation == run.saturation for got in runs)
    return sample, run


def _tinynet():
    plan = read_netx(NETX / "tinynet" / "tiny.net")
    plan.fixed["layer0"].bias_mant = from_lava(np.load(NETX / "tinynet" / "input_bias.npy"), (3, 16, 16)).astype(int)
    return plan, np.zeros((17, 3, 16, 16))


def _pilotnet():
    plan = read_netx(NETX / "pilotnet_sdnn" / "network.net")
    frame = from_lava(np.load(NETX / "pilotnet_sdnn" / "input.npy")[..., 0], plan.input_shape)
    return plan, np.repeat(frame[None], 6, axis=0)


def _lif():
    x = np.loadtxt(NIR_CASES / "01_lif" / "lif_exact.csv", delimiter=",")[:, :1]
    return read_plan(NIR_CASES / "01_lif" / "lif_norse.nir"), x


def _braille():
    x = np.load(NIR_CASES / "03_rnn" / "braille_test0_input_recovered.npy").astype(np.float64)
    return read_plan(NIR_CASES / "03_rnn" / "braille_noDelay_bias_zero.nir"), x


def _cnn():
    x = (np.random.default_rng(0).random((12, 2, 34, 34)) < 0.15).astype(np.float64)
    return read_plan(NIR_CASES / "02_cnn" / "cnn_sinabs.nir", dt=1.0), x  # sinabs IAF: one step per dt


def _cnn_double():
    """The CNN at the quantizer's precision ``double``: each conv a pair (the layer and the one that refines it)
    that the emulator runs over a block as one conv of their summed weights."""
    plan, x = _cnn()
    plan = quantize(plan, precision="double").plan
    with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
        assert sum(len(g.synapses) == 2 for groups in emu.conv_groups.values() for g in groups) == 3
    return plan, x


CASE_BUILDERS = {"lif": _lif, "braille": _braille, "cnn": _cnn, "cnn_double": _cnn_double, "tinynet": _tinynet,
                 "pilotnet_sdnn": _pilotnet}


@pytest.mark.parametrize("case", list(CASE_BUILDERS))
def test_shared_cases_are_bit_exact_with_lava_fixed(case):
    plan, x = CASE_BUILDERS[case]()
    sample, run = assert_bit_exact(plan, x)
    assert sum(np.count_nonzero(r) for r in sample.raw.values()) > 0  # something happened


@pytest.mark.parametrize("case", ["lif", "braille", "cnn"])
def test_shared_cases_match_lava_float(case):
    plan, x = CASE_BUILDERS[case]()
    sample, state, run = run_both(plan, x, "float")
    for name, raw in sample.raw.items():
        np.testing.assert_array_equal(run.raw[name][0], raw, err_msg=f"spikes of {name}")
    for owner, variables in state.items():
        for var, value in variables.items():  # sums in another order (Lava's float Conv is float32): to rounding
            np.testing.assert_allclose(run.state[owner][var][0], value, rtol=1e-5, atol=1e-5, err_msg=f"{owner}.{var}")


def test_pauses_that_said_they_only_read_may_not_write_the_input():
    plan, x = _lif()
    writes = []

    def on_pause(done, read, write):
        writes.append(done)
        write(done, np.ones((1, *plan.input_shape)))

    with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
        with pytest.raises(UsageError, match="reads_only"):
            emu.run_batch(x[None], pause_at=[3], on_pause=on_pause, reads_only=True)
        emu.run_batch(x[None], pause_at=[3], on_pause=on_pause)  # without the promise, the write lands
    assert writes == [3, 3]


def test_a_batch_equals_its_samples_run_one_by_one():
    plan, _ = _braille()
    rng = np.random.default_rng(1)
    x = (rng.random((5, 40, *plan.input_shape)) < 0.3).astype(np.float64)
    with EmulatorRunner(plan, 40, "fixed", device="cpu") as emu:
        batch = emu.run_batch(x)
        singles = [emu.run_sample(x[i]) for i in range(len(x))]
    for name in batch.spikes:
        assert np.array_equal(batch.spikes[name], np.stack([s.spikes[name] for s in singles]))
    assert len({int(batch.spikes["lif2"][i].sum()) for i in range(5)}) > 1  # the samples differ


# ---- randomised networks ------------------------------------------------------------------------------

@st.composite
def fixed_networks(draw):
    """input -> Dense or Conv -> LIF A (optionally recurrent) -> Dense -> LIF B, with Loihi integers drawn over
    their whole ranges (weights beyond 8 bits are clipped by Lava's Dense, and by the emulator's)."""
    ints = lambda lo, hi: draw(st.integers(lo, hi))  # noqa: E731
    rng = np.random.default_rng(ints(0, 2 ** 32 - 1))
    weights = lambda shape, top: rng.integers(-top, top + 1, size=shape)  # noqa: E731
    w_top = draw(st.sampled_from([4, 32, 255, 400]))
    if draw(st.booleans()):
        c_in, size, c_out, k, stride, pad = ints(1, 2), ints(3, 6), ints(1, 3), ints(1, 3), ints(1, 2), ints(0, 1)
        in_shape, side = (c_in, size, size), (size + 2 * pad - k) // stride + 1
        shape_a = (c_out, side, side)
        w1 = weights((c_out, c_in, k, k), min(w_top, 255))
        syn1 = SynapseLayer("s1", "input", "A", w1.astype(float), "conv", in_shape, shape_a, (stride, stride), (pad, pad))
        exp1 = 0  # Lava's fixed Conv has no weight exponent
    else:
        in_shape, shape_a = (ints(1, 6),), (ints(1, 8),)
        w1 = weights((shape_a[0], in_shape[0]), w_top)
        syn1 = SynapseLayer("s1", "input", "A", w1.astype(float), "dense", in_shape, shape_a)
        exp1 = ints(-4, 7)
    n_a, n_b = int(np.prod(shape_a)), ints(1, 5)
    layers, fixed = [syn1], {"s1": FixedSynapse(w1, exp1, draw(st.sampled_from([6, 7, 8])))}
    if draw(st.booleans()):
        w = weights((n_a, n_a), w_top)
        layers.append(SynapseLayer("rec", "A", "A", w.astype(float), "dense", shape_a, shape_a, recurrent=True))
        fixed["rec"] = FixedSynapse(w, ints(-2, 5), 8)
    w2 = weights((n_b, n_a), w_top)
    layers.append(SynapseLayer("s2", "A", "B", w2.astype(float), "dense", shape_a, (n_b,)))
    fixed["s2"] = FixedSynapse(w2, ints(-4, 7), 8)
    for name, shape, delay in (("A", shape_a, 1), ("B", (n_b,), 2)):
        bias = rng.integers(-4096, 4096, size=shape) * (rng.random(shape) < draw(st.sampled_from([0.0, 0.5, 1.0])))
        layers.append(NeuronLayer(name, shape, 0.1, 0.1, 1.0, np.zeros(shape), delay_steps=delay))
        vth = draw(st.integers(0, 64) | st.integers(0, 2 ** 17 - 1))
        fixed[name] = FixedNeuron(du=ints(0, 4095), dv=ints(0, 4095), vth=vth, bias_mant=bias, bias_exp=ints(0, 7))
    plan = SpikingPlan(in_shape, layers, {"out": "B"}, 1e-3, fixed=fixed)
    x = rng.random((ints(3, 25), *in_shape)) < draw(st.floats(0.1, 0.9))
    return plan, x.astype(np.float64)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(fixed_networks())
def test_random_networks_are_bit_exact_with_lava_fixed(net):
    plan, x = net
    assert_bit_exact(plan, x)


def test_saturating_network_wraps_u_and_clips_v_exactly_as_lava():
    """Weights and exponents at their limits: u overflows 24 bits and wraps, v clips; both as Lava does."""
    n_in = 64
    layers = [SynapseLayer("s1", "input", "A", np.full((2, n_in), 255.0), "dense", (n_in,), (2,)),
              NeuronLayer("A", (2,), 0.0, 0.0, 1.0, np.zeros(2), delay_steps=1)]
    fixed = {"s1": FixedSynapse(np.array([[255] * n_in, [-256] * n_in]), weight_exp=7),
             "A": FixedNeuron(du=0, dv=0, vth=2 ** 17 - 1, bias_mant=np.zeros(2, int))}
    plan = SpikingPlan((n_in,), layers, {"out": "A"}, 1e-3, fixed=fixed)
    x = np.ones((20, n_in))
    assert_bit_exact(plan, x)
    with EmulatorRunner(plan, 20, "fixed", device="cpu") as emu:
        saturation = emu.run_batch(x[None]).saturation["A"]
    assert saturation["u_wrapped"] > 0 and saturation["v_clipped"] > 0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(-600, 600), min_size=1, max_size=30), st.integers(1, 8))
def test_dense_weight_preparation_equals_lavas(weights, bits):
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    w = np.array(weights)
    mode = determine_sign_mode(w)
    want = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
    np.testing.assert_array_equal(lava_dense_weights(w, bits), want)


def test_wrap_int_is_numpys_integer_overflow():
    import torch

    from neurodeploy.runtime.emulator import wrap_int

    x = np.array([0, 1, -1, 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1, 2 ** 40 + 12345, -(2 ** 45) - 7, 2 ** 23, -2 ** 23])
    np.testing.assert_array_equal(wrap_int(torch.as_tensor(x)).numpy(), x.astype(np.int32))
    np.testing.assert_array_equal(wrap_int(torch.as_tensor(x), 16).numpy(), x.astype(np.int16))
    np.testing.assert_array_equal(wrap_int(torch.as_tensor(x), 24).numpy(), (x + 2 ** 23) % 2 ** 24 - 2 ** 23)


def test_a_sum_beyond_exact_arithmetic_is_refused():
    """Lava's Conv takes any int32 kernel: with graded input, sums could pass 2**53."""
    layers = [SynapseLayer("s1", "input", "A", np.ones((1, 1, 2, 2)), "conv", (1, 2, 2), (1, 1, 1), graded=True),
              NeuronLayer("A", (1, 1, 1), 0.0, 0.0, 1.0, np.zeros((1, 1, 1)), delay_steps=1)]
    fixed = {"s1": FixedSynapse(np.full((1, 1, 2, 2), 2 ** 23), num_message_bits=24),
             "A": FixedNeuron(bias_mant=np.zeros((1, 1, 1), int))}
    plan = SpikingPlan((1, 2, 2), layers, {"out": "A"}, 1e-3, fixed=fixed, graded_input=True)
    with pytest.raises(EmulatorError, match="s1"):
        EmulatorRunner(plan, 5, "fixed", device="cpu")


# ---- the zoo models, through the co-simulation and the CLI ----------------------------------------------

def test_the_default_zoo_models_front_end_is_bit_exact_with_lava_fixed(tmp_path):
    """liquidspikeformer's Conv-LIF front-end at precision double, whose conv populations also take always-on
    bias lines: those populations sum a block's input in float32, the bias lines' messages added in."""
    from neurodeploy.exporters import sequential_to_nir, write_nir
    from neurodeploy.models import zoo

    entry = zoo.get("liquidspikeformer")
    x = entry.example_inputs(1)[0].numpy().astype(np.float64)  # (T, 2, 16, 16): a test sample's spikes
    write_nir(sequential_to_nir(entry.build().frontend, x.shape[1:], entry.dt_s, producer="test"), tmp_path / "f.nir")
    plan = quantize(read_plan(tmp_path / "f.nir"), precision="double").plan
    with EmulatorRunner(plan, len(x), "fixed", device="cpu") as emu:
        float32_sums = [name for name in emu.conv_groups if any(s.layer.source == "bias" for s in emu.by_target[name])]
    assert len(float32_sums) == 2, emu.conv_groups
    sample, run = assert_bit_exact(plan, x)
    assert all(np.count_nonzero(sample.raw[name]) for name in float32_sums)  # the populations spiked

@pytest.mark.parametrize("bundle_fixture", ["demo_bundle", "mamba_bundle"])
def test_zoo_cosim_with_the_emulator_equals_lava(bundle_fixture, request):
    from neurodeploy import cosimulate
    from neurodeploy.bundle import read_bundle
    from neurodeploy.cost.counts import synaptic_ops

    bundle = read_bundle(request.getfixturevalue(bundle_fixture))
    for mode in ("fixed", "float"):
        lava = cosimulate(bundle, mode=mode, backend="lava", schedule="end")
        emu = cosimulate(bundle, mode=mode, backend="emulator", schedule="end")
        for name, spikes in lava.spikes.items():
            assert np.array_equal(emu.spikes[name], spikes), (mode, name)
        assert np.array_equal(emu.y, lava.y)
        emu_sops, lava_sops = (synaptic_ops(r.plan, r.inputs, r.spikes) for r in (emu, lava))
        assert [s.effective for s in emu_sops] == [s.effective for s in lava_sops]
        assert emu.agreement.spike_mismatches == lava.agreement.spike_mismatches
    assert lava.agreement.spike_mismatches == 0  # float mode reproduces PyTorch


def test_cli_cosim_emulator_on_a_batch_and_parity(demo_bundle, tmp_path, capsys):
    import json

    from neurodeploy.analysis.parity import compare_layers
    from neurodeploy.cli import main

    bundle = str(demo_bundle)
    assert main(["cosim", bundle, "--backend", "emulator", "--mode", "fixed", "--json"]) == 0
    emu = json.loads(capsys.readouterr().out)
    assert main(["cosim", bundle, "--backend", "lava", "--mode", "fixed", "--json"]) == 0
    lava = json.loads(capsys.readouterr().out)
    assert emu["backend"] == "emulator" and emu["wall_s"]["emulator"] > 0
    assert emu["sops"] == lava["sops"] and emu["agreement"] == lava["agreement"]
    x = np.load(demo_bundle / "reference" / "inputs.npy")[0]
    by_backend = {b: compare_layers(demo_bundle / "spiking.nir", x, backend=b) for b in ("lava", "emulator")}
    for key in ("float", "fixed"):
        assert [la.mismatches[f"lava_{key}"] for la in by_backend["lava"].layers] == \
               [la.mismatches[f"emulator_{key}"] for la in by_backend["emulator"].layers]


# ---- dataset evaluation ----------------------------------------------------------------------------------

def test_dataset_evaluation_float_reproduces_pytorch_and_fixed_equals_lava(demo_bundle, tmp_path, capsys):
    import json

    import torch

    from neurodeploy.analysis.evaluate import evaluate, torch_predictions
    from neurodeploy.bundle import read_bundle
    from neurodeploy.cli import main
    from neurodeploy.models import zoo

    entry = zoo.get("tiny_hybrid")
    model = entry.build()
    torch.manual_seed(5)
    x = entry.example_inputs(48).numpy()
    n_out = int(model(torch.as_tensor(x[:1], dtype=torch.float32)).shape[-1])
    labels = np.random.default_rng(0).integers(0, n_out, len(x))  # an untrained model: what matters is agreement
    bundle = read_bundle(demo_bundle)
    floating = evaluate(bundle, x, labels, "emulator", "float", torch_model=model, chunk=20, progress=False)
    assert floating.agreement == 1.0 and floating.accuracy == floating.torch_accuracy
    assert floating.torch_accuracy == float(np.mean(torch_predictions(model, x) == labels))
    fixed = evaluate(bundle, x, labels, "emulator", "fixed", chunk=20, progress=False)
    on_lava = evaluate(bundle, x[:4], labels[:4], "lava", "fixed", progress=False)
    assert on_lava.accuracy == evaluate(bundle, x[:4], labels[:4], "emulator", "fixed", progress=False).accuracy
    assert fixed.samples == 48 and fixed.sops_per_sample > 0
    np.savez(tmp_path / "test.npz", x=x, labels=labels)
    assert main(["evaluate", str(demo_bundle), "--data", str(tmp_path / "test.npz"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == fixed.accuracy
    assert printed["torch_accuracy"] == floating.torch_accuracy  # the zoo model, found by the bundle's provenance
    np.savez(tmp_path / "bad.npz", x=x, labels=labels[:3])
    assert main(["evaluate", str(demo_bundle), "--data", str(tmp_path / "bad.npz")]) == 2
    assert "labels must be integers of shape (48,)" in capsys.readouterr().err


def test_an_evaluations_chunks_share_one_set_of_onnx_runtime_sessions(demo_bundle, monkeypatch):
    """Each chunk used to open the bundle's sessions anew (each with its thread pool: the heap grew by about
    9 MiB a chunk); within an evaluation they are opened once, and the figures are those of one chunk."""
    from neurodeploy.analysis.evaluate import evaluate
    from neurodeploy.bundle import read_bundle
    from neurodeploy.exporters import onnx_session
    from neurodeploy.models import zoo

    opened = []
    new_session = onnx_session._new_session
    monkeypatch.setattr(onnx_session, "_new_session", lambda *args: opened.append(args[0]) or new_session(*args))
    bundle = read_bundle(demo_bundle)
    x = zoo.get("tiny_hybrid").example_inputs(24).numpy()
    labels = np.arange(len(x)) % 2
    whole = evaluate(bundle, x, labels, chunk=24, progress=False)
    once = len(opened)
    chunked = evaluate(bundle, x, labels, chunk=4, progress=False)  # 6 chunks
    assert 0 < once == len(opened) - once, opened
    assert (chunked.accuracy, chunked.sops_per_sample) == (whole.accuracy, whole.sops_per_sample)
    assert len(opened) == 2 * once and onnx_session._REUSED.get() is None  # and let go after each evaluation


@pytest.mark.parametrize("weight_max", [200, 60_000])  # int16 weight rows, and int32 ones
def test_event_driven_sums_equal_the_integer_product(weight_max):
    """The event kernel (runtime/event_kernel.py) on every density from none to all spikes, rows with 0-3
    events left after the groups of four, against numpy's int64 product."""
    from neurodeploy.runtime.event_kernel import EventSums

    rng = np.random.default_rng(3)
    weights = rng.integers(-weight_max, weight_max + 1, (37, 203))  # (n_out, n_in), as Lava's dense weights
    sums = EventSums(weights)
    sums.s_per_event, sums.s_per_row, sums.min_pairs = 0.0, 1.0, 0
    assert sums.w_t.dtype == (np.int16 if weight_max < 2 ** 15 else np.int32)
    for density in (0.0, 0.01, 0.3, 1.0):
        spikes = rng.random((23, 203)) < density
        np.testing.assert_array_equal(sums.sums(spikes), spikes.astype(np.int64) @ weights.T)
