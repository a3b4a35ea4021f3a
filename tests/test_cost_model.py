"""Cost model: NeuroBench SOP counts, the 45 nm tier, the energy terms and the profiles."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import check_in_chromium
from torch import nn

from neurodeploy.bundle import read_bundle
from neurodeploy.cost.counts import synaptic_ops
from neurodeploy.cost.energy_latency import Counts, estimate, neuromorphic_cost
from neurodeploy.profiles import PROFILE_DIR, load_profile
from neurodeploy.errors import ProfileError
from neurodeploy.exporters.nir_export import frontend_to_nir
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.neurons import LIFCell
from neurodeploy.spiking.float_simulation import simulate_float
from neurodeploy.spiking.resources import map_resources

SIZES, STEPS = [20, 256, 256, 256, 35], 200


@pytest.fixture(scope="module")
def gsc_snn():
    """NeuroBench's GSC topology 20-256-256-256-35 with random weights, run for 200 steps."""
    torch.manual_seed(0)
    layers = []
    for n_in, n_out in zip(SIZES, SIZES[1:]):
        layers += [nn.Linear(n_in, n_out, bias=False), LIFCell(n_out, du=1.0, dv=0.1, vth=1.0)]
    front = SpikingSequential(*layers)
    with torch.no_grad():
        for layer in front.layers[::2]:
            layer.weight.mul_(3.0)
            layer.weight[torch.rand(layer.weight.shape) < 0.3] = 0.0  # some zero weights: effective < dense
    plan = nir_to_plan(frontend_to_nir(front, 1e-3))
    x = (np.random.default_rng(0).random((STEPS, 20)) < 0.2).astype(np.float64)
    return plan, x, simulate_float(plan, x)


def test_dense_sops_match_neurobench_and_effective_is_a_direct_count(gsc_snn):
    plan, x, spikes = gsc_snn
    sops = synaptic_ops(plan, x[None], {k: v[None] for k, v in spikes.items()})
    assert sum(s.dense for s in sops) == 29_030_400  # NeuroBench's published figure for this topology
    direct = 0
    for syn in plan.synapses:
        s_in = x if syn.source == "input" else spikes[syn.source]
        for t in range(STEPS):
            direct += int(np.count_nonzero((s_in[t] != 0)[None, :] & (syn.weights != 0)))
    assert sum(s.effective for s in sops) == direct and 0 < direct < 29_030_400
    assert all(v.sum() > 0 for v in spikes.values())


def _counts(**changes) -> Counts:
    base = dict(num_steps=10, synops={"a": 1000.0}, dense_synops=5000.0, spikes={"a": 40.0}, neurons={"a": 100},
                cut_spikes=40.0, windows=2, dense_flops=2000.0, dense_macs=500.0, dense_bytes=4000.0,
                dense_kernels=10.0, synapse_weights=500.0, neurobench_synops=1000.0)
    return Counts(**(base | changes))


def _plan_and_map():
    layer = nn.Linear(50, 100, bias=False)
    plan = nir_to_plan(frontend_to_nir(SpikingSequential(layer, LIFCell(100, dv=0.1)), 1e-3))
    plan.layers[-1].name = "a"
    plan.synapses[0].target = "a"
    plan.outputs = {"output": "a"}
    return plan, map_resources(plan, "loihi2")


def test_45nm_tier_is_the_spikformer_formula():
    plan, resources = _plan_and_map()
    report = estimate(plan, resources, _counts())
    assert report.tiers_j["cmos45nm_sops"] == pytest.approx(0.9e-12 * 1000 + 4.6e-12 * 500)  # E_AC*SOPs + E_MAC*MACs


def test_total_is_the_sum_and_a_profile_change_moves_it_by_the_expected_amount(tmp_path):
    plan, resources = _plan_and_map()
    report = estimate(plan, resources, _counts())
    e = report.energy_j
    assert e["total"] == pytest.approx(e["neuromorphic"] + e["transfer"] + e["gpu"], rel=1e-12)
    nm_terms = {k: v for k, v in report.terms_j.items() if k.startswith("neuromorphic.")}
    assert e["neuromorphic"] == pytest.approx(sum(nm_terms.values()), rel=1e-12)
    data = json.loads((PROFILE_DIR / "loihi2.json").read_text())
    data["energy"]["synop_j"]["value"] *= 2
    (tmp_path / "l2x.json").write_text(json.dumps(data))
    doubled = estimate(plan, resources, _counts(), loihi=str(tmp_path / "l2x.json"))
    synop_j = load_profile("loihi2").energy.synop_j.value
    assert doubled.energy_j["total"] - e["total"] == pytest.approx(1000.0 * synop_j, rel=1e-9)
    terms, _, _ = neuromorphic_cost(plan, resources, _counts(), load_profile("loihi2"))
    assert terms["neuron_updates"] == pytest.approx(100 * 10 * load_profile("loihi2").energy.neuron_update_j.value)


def test_missing_or_malformed_profile_fields_are_named(tmp_path):
    data = json.loads((PROFILE_DIR / "h100.json").read_text())
    del data["compute"]["tdp_w"]
    data["compute"]["peak_flops"]["value"] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path / "bad.json", "gpu")
    assert "compute.tdp_w" in str(err.value) and "compute.peak_flops.value" in str(err.value)
    with pytest.raises(ProfileError, match="a 'gpu' profile where a 'neuromorphic' profile is needed"):
        load_profile("h100", "neuromorphic")
    plan, resources = _plan_and_map()
    partial = json.loads((PROFILE_DIR / "loihi2.json").read_text())
    del partial["timing"]
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    with pytest.raises(ProfileError, match="no timing section"):
        estimate(plan, resources, _counts(), loihi=str(tmp_path / "partial.json"))


def test_every_bundled_profile_validates_and_labels_every_figure():
    kinds = {"loihi1": "neuromorphic", "loihi1_silicon": "neuromorphic", "loihi2": "neuromorphic", "h100": "gpu",
             "a100": "gpu", "jetson_orin_nano": "gpu", "cmos45nm": "reference"}
    assert {p.stem for p in PROFILE_DIR.glob("*.json")} == set(kinds)
    for name, kind in kinds.items():
        profile = load_profile(name, kind)
        assert profile.name == name
    loihi2 = load_profile("loihi2")
    assert loihi2.energy.synop_j.label == "estimate"  # no per-op Loihi 2 energy is published


def _unreadable(lines: list[str]) -> list[str]:
    """Lines a person should not be shown: a Python dict or list repr, or a number printed with more than 4
    significant digits (counts written as integers with thousands separators are exact, and allowed)."""
    import re

    def significant(token: str) -> int:  # "1.955e+04" -> 4, "0.0123" -> 3, "989000000000000.0" -> 16
        return len(token.lower().split("e")[0].replace(",", "").replace(".", "").lstrip("0"))

    return [line for line in lines if re.search(r"[{\[]'|': ", line) or
            any(significant(t) > 4 for t in re.findall(r"\d[\d,]*\.\d+(?:e[-+]?\d+)?", line))]


def test_html_report_is_self_contained_with_plots(mamba_bundle, tmp_path, capsys):
    import base64
    import io
    import subprocess
    import sys
    from html.parser import HTMLParser

    from matplotlib import image

    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "report", str(mamba_bundle), "--html",
                           str(tmp_path / "r.html")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.headings, self.scripts, self._in_h2 = [], [], 0, False
            self.text, self._in_style = [], False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.scripts += tag == "script"
            self._in_h2 = tag == "h2"
            self._in_style = tag == "style"
            if tag == "img":
                self.images.append(attrs["src"])

        def handle_data(self, data):
            if data.strip() and not self._in_style:
                self.text.append(data.strip())
            if self._in_h2:
                self.headings.append(data)
                self._in_h2 = False

    page = Page()
    page.feed((tmp_path / "r.html").read_text())
    assert page.scripts == 0 and len(page.images) == 7  # with the timeline measured on the streamed Lava run
    for src in page.images:  # every plot is a real, non-empty PNG
        assert src.startswith("data:image/png;base64,")
        pixels = image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300 and pixels.std() > 0
    assert any(h.startswith("Resource map (loihi2") for h in page.headings)
    assert any(h.startswith("Assumptions") for h in page.headings)
    assert any(h.startswith("Pipeline timeline, measured on this machine") for h in page.headings)
    assert any(h.startswith("Pipeline timeline, modelled") for h in page.headings)
    shown = check_in_chromium(tmp_path / "r.html", tmp_path / "r.png")  # where a browser is installed
    assert shown is None or "decoded by Chromium: 7" in shown
    raw = (tmp_path / "r.html").read_text()
    assert raw.count('href="data:image/svg+xml;base64,') == 7  # every figure also as a vector file
    assert any(h.startswith("Partition: what runs where") for h in page.headings)
    placed = [p.module for p in read_bundle(mamba_bundle).manifest.placement]
    assert placed and all(f"<b>{m}</b>" in raw for m in placed) and "&#8594; cut &#8594;" in raw
    assert not _unreadable(page.text), _unreadable(page.text)  # the page's text, as a person reads it
    assert "GPU synaptic ops per sample (NeuroBench), ACs / MACs" in page.text
    named = _layer_cells((tmp_path / "r.html").read_text())
    assert named and not _nir_ids(mamba_bundle, named), _nir_ids(mamba_bundle, named)
    from neurodeploy.cli import main

    assert main(["energy", str(mamba_bundle)]) == 0
    terminal = capsys.readouterr().out.splitlines()
    assert any("GPU ACs / MACs" in line for line in terminal) and not _unreadable(terminal), _unreadable(terminal)
    assert not _nir_ids(mamba_bundle, terminal)


def _layer_cells(page: str) -> list[str]:
    """The cells of the HTML tables' columns that name a layer (population, synapse, what limits a scale)."""
    cells = []
    for table in re.findall(r"<table>(.*?)</table>", page, re.S):
        heads = re.findall(r"<th>([^<]*)</th>", table)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
            cells += [c for h, c in zip(heads, re.findall(r"<td>([^<]*)</td>", row))
                      if h in ("population", "synapse", "limited by", "layer")]
    return cells


def _nir_ids(bundle_path, texts: list[str]) -> list[str]:
    """Texts that name a layer by its bare NIR id where the user's model gives it a name (``"0 (Linear)"``, the
    module's path and type): a table cell that is the id, or the id without its type after ``weights of``,
    ``SOPs`` or at the start of a line."""
    import neurodeploy as nd

    ids = set(nd.load(bundle_path).manifest.spiking.module_paths)
    bare = [re.compile(rf"(weights of |SOPs |^[│ ]*){re.escape(i)}(?=$|[\s:,)])(?! \((?!effective))") for i in ids]
    return [t for t in (text.strip() for text in texts) if t in ids or any(b.search(t) for b in bare)]
