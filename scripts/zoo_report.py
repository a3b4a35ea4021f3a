"""Measure every trained zoo model end to end and print docs/zoo.md's table (numbers computed here).

For each model: compile it (``neurodeploy compile NAME``), co-simulate its reference samples in Lava
float (spike mismatches and output error against PyTorch), price them (energy per sample, Loihi 2 +
H100), and evaluate the held-out test split three ways: PyTorch, the float co-simulation and the
fixed-point deployment (both on the emulator, with the model's schedule). Then what each seed asks for:
LiquidSpikeFormer's early exits, Neuro-SVT's Permanence Score and SOPs against a dense ViT-style twin,
the filter's skipped GPU windows, Mamba-Liquid-SNN's integration modes.

    .venv/bin/python scripts/zoo_report.py [--test-size 256] [--out out/zoo_report.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import neurodeploy as nd
from neurodeploy.analysis.evaluate import torch_predictions
from neurodeploy.models import zoo
from neurodeploy.runtime.lava_compat import install


def measure(name: str, test_size: int, tmp: Path) -> dict:
    entry = zoo.get(name)
    bundle = nd.compile(name, tmp / name, samples=4)
    early = bundle.manifest.dense.exit_threshold is not None
    cosim = nd.cosimulate(bundle, mode="float", backend="lava")  # the bundle's own schedule: the entry's
    data = nd.estimate(bundle, cosim).figures
    x, labels = entry.dataset("test", test_size)
    model = entry.build()
    event = entry.schedule == "event"
    row = {"model": name, "schedule": entry.schedule, "classes": entry.num_classes, "test_samples": test_size,
           "spike_mismatches": cosim.agreement.spike_mismatches, "max_abs_err": cosim.agreement.max_abs_err,
           "energy_uj": data["energy_j"]["total"] * 1e6, "gpu_only_uj": data["baseline_gpu_only"]["energy_j"] * 1e6,
           "torch_acc": float(np.mean(torch_predictions(model, x, event=event) == labels))}
    for mode in ("float", "fixed"):
        result = nd.evaluate(bundle, x, labels, backend="emulator", mode=mode)
        row[f"{mode}_acc"] = result.accuracy
        row["sops_per_sample"] = result.sops_per_sample
    if early:
        exits = nd.cosimulate(bundle, x[:64], mode="fixed", backend="emulator", early_exit=True)
        row["early_exit"] = nd.estimate(bundle, exits).early_exit | {
            "accuracy": nd.evaluate(bundle, x, labels, backend="emulator", mode="fixed", early_exit=True).accuracy}
        row["early_exit"].pop("exit_windows")
    if event:
        run = nd.cosimulate(bundle, x[:64], mode="fixed", backend="emulator", schedule="event")
        windows = run.y.shape[0] * run.y.shape[1]
        row["gpu_windows_skipped"] = 1 - run.dense_invocations / windows
    if name == "neuro_svt":
        row |= neuro_svt_extras(bundle, model, x, labels, cosim, tmp)
    if name == "mamba_liquid_snn":
        row["modes"] = mamba_modes(x, labels)
    return row


def neuro_svt_extras(bundle, model, x, labels, cosim, tmp: Path) -> dict:
    """Permanence Score (the output after >= 30 occluded frames) and SOPs against the dense twin's MACs."""
    from neurodeploy.analysis.evaluate import predictions
    from neurodeploy.cost.macs import count_macs
    from neurodeploy.exporters import export_dense
    from neurodeploy.models.zoo import datasets, neuro_svt
    from neurodeploy.cost.counts import synaptic_ops
    from neurodeploy.cost.pricing import cost

    with torch.no_grad():
        y = model(torch.as_tensor(x)).numpy()
    visible = datasets.VISIBLE_STEPS // neuro_svt.WINDOW - 1
    _, counts = cost(bundle, cosim)
    svt_sops = sum(s.effective for s in synaptic_ops(cosim.plan, cosim.inputs, cosim.spikes))
    svt_ops = svt_sops + counts.dense_macs
    twin = neuro_svt.dense_baseline().eval()
    steps = neuro_svt.NUM_STEPS
    export_dense(twin, torch.zeros(2, steps, *neuro_svt.INPUT_SHAPE), tmp / "vit.onnx", {0: "batch", 1: "steps"})
    vit_macs = count_macs(tmp / "vit.onnx", {"spikes": (1, steps, *neuro_svt.INPUT_SHAPE)}).macs
    return {"permanence_score": float(np.mean(predictions(y, False) == labels)),
            "acc_last_visible_window": float(np.mean(np.argmax(y[:, visible], -1) == labels)),
            "occluded_frames": steps - datasets.VISIBLE_STEPS,
            "svt_sops_plus_macs": svt_ops, "svt_sops": svt_sops,
            "svt_backend_macs": counts.dense_macs, "vit_twin_macs": vit_macs,
            "ops_reduction": 1 - svt_ops / vit_macs}


def mamba_modes(x, labels) -> dict:
    """PyTorch test accuracy of each integration mode whose weights were trained (scripts/train_zoo.py --mode)."""
    from neurodeploy.models.zoo import mamba_liquid_snn as mls
    from neurodeploy.models.zoo.common import WEIGHTS, load_trained

    result = {}
    for mode in mls.MODES:
        name = mls.NAME if mode == "bidirectional" else f"{mls.NAME}-{mode}"
        if (WEIGHTS / f"{name}.pt").exists():
            model = load_trained(mls.architecture(mode), name)
            result[mode] = float(np.mean(torch_predictions(model, x) == labels))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-size", type=int, default=256)
    parser.add_argument("--out", default="out/zoo_report.json")
    parser.add_argument("--models", nargs="*", default=zoo.TRAINED)
    args = parser.parse_args()
    install()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, args.test_size, Path(tmp)) for name in args.models]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print("| model | chance | PyTorch | float co-sim | fixed point (emulator) | spike mismatches / max err (Lava float) | energy / sample (Loihi 2 + H100; all-GPU) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} ({r['schedule']}) | {1 / r['classes']:.0%} | {r['torch_acc']:.1%} | {r['float_acc']:.1%} | "
              f"{r['fixed_acc']:.1%} | {r['spike_mismatches']} / {r['max_abs_err']:.1e} | {r['energy_uj']:.1f} uJ; "
              f"{r['gpu_only_uj']:.1f} uJ |")
    print(json.dumps([{k: v for k, v in r.items() if isinstance(v, dict)} | {"model": r["model"]} for r in rows],
                     indent=2))


if __name__ == "__main__":
    main()
