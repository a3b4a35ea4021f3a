"""``neurodeploy``: compile, co-simulate and cost hybrid spiking + dense models.

    neurodeploy demo [--out DIR]
    neurodeploy compile MODEL|module:function --out BUNDLE [--samples N] [--weights W.pt] [--cut NAME]
    neurodeploy compile FILE.nir|FILE.net --out BUNDLE [--dt SECONDS] [--profile loihi2]
    neurodeploy parity FILE.nir|FILE.net|BUNDLE --input X.npy [--dt SECONDS] [--backend lava|emulator] [--json]
    neurodeploy cosim BUNDLE [--input X.npy] [--output Y.npz] [--mode float|fixed] [--backend lava|emulator] [--json]
    neurodeploy energy BUNDLE [--loihi PROFILE] [--gpu PROFILE] [--input X.npy] [--mode] [--backend] [--json]
    neurodeploy report BUNDLE [--html OUT.html] [--mode] [--backend]
    neurodeploy evaluate BUNDLE --data D.npz [--backend emulator|lava] [--mode fixed|float] [--model NAME] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import get_args

import numpy as np
from rich.console import Console

from neurodeploy.bundle import Schedule

DEFAULT_SAMPLES = 8


class CliError(Exception):
    """An error the CLI reports in one line and exit code 2."""


def _cmd_compile(args: argparse.Namespace) -> int:
    from neurodeploy.exporters import SPIKING_FORMATS
    from neurodeploy.models import zoo
    from neurodeploy.compiler.pipeline import compile_spiking, compile_zoo

    console = Console(stderr=True)
    if Path(args.model).suffix.lower() in SPIKING_FORMATS:
        path = compile_spiking(Path(args.model), Path(args.out), args.dt, args.profile)
        _print_spiking_bundle(path, console)
    elif args.model in zoo.ZOO:
        if args.dt is not None:
            raise CliError("--dt applies to .nir/.net files; a zoo model carries its own dt")
        path = compile_zoo(args.model, Path(args.out), args.samples)
    elif ":" in args.model:
        from neurodeploy.compiler.pipeline import compile_hybrid, load_factory

        try:
            model, inputs, dt_s, name = load_factory(args.model, Path(args.weights) if args.weights else None,
                                                     args.samples)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        path = compile_hybrid(model, inputs, Path(args.out), args.dt or dt_s, name, cut=args.cut)
    else:
        raise CliError(f"MODEL {args.model!r} is neither a bundled model ({', '.join(sorted(zoo.ZOO))}), a "
                       ".nir/.net file, nor a module:function factory")
    console.print(f"bundle written to {path}")
    return 0


def _print_spiking_bundle(path: Path, console: Console) -> None:
    from neurodeploy.bundle import read_bundle

    m = read_bundle(path).manifest.spiking
    console.print(f"dt = {m.dt_s:g} s; input shape {tuple(m.input_shape)}; delay compensation {m.delay_steps}")
    res = m.resources
    console.print(f"resources on {res['profile']}: {res['cores']} cores, {res['chips']} chip(s)")
    for pop in res["populations"]:
        console.print(f"  {pop['name']}: {pop['neurons']} neurons, {pop['synapses']:,} synapses, "
                      f"fan-in {pop['fan_in']}, {pop['cores']} core(s)")
    for q in m.quantization or []:
        syn = ", ".join(f"{s['name']} exp {s['weight_exp']} rms err {s['rel_rms_err']:.2%}" for s in q["synapses"])
        console.print(f"  fixed point {q['name']}: scale {q['scale']:.4g} (limited by {q['limited_by']}), "
                      f"vth {q['vth_mant']}; {syn}")


def _cosim_summary(bundle_path: Path, inputs: np.ndarray | None, mode: str, backend: str, progress: bool,
                   schedule: str = "end", loihi: str = "loihi2", gpu: str = "h100", checkpoint: str | None = None,
                   early_exit: bool = False):
    from neurodeploy.bundle import read_bundle
    from neurodeploy.runtime.cosim import run_cosim
    from neurodeploy.report.summary import summary

    bundle = read_bundle(bundle_path)
    result = run_cosim(bundle, inputs, mode=mode, backend=backend, progress=progress, schedule=schedule,
                       checkpoint=checkpoint, early_exit=early_exit)
    return bundle, result, summary(bundle, result, loihi, gpu)


def _load_input(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read --input {path}: {exc}") from exc


def _cmd_parity(args: argparse.Namespace) -> int:
    from neurodeploy.bundle import read_bundle
    from neurodeploy.analysis.parity import compare_layers, print_parity

    source = Path(args.source)
    dt = args.dt
    if source.is_dir():
        bundle = read_bundle(source)
        source, dt = bundle.spiking_path, bundle.manifest.spiking.dt_s
    x = _load_input(args.input)
    result = compare_layers(source, x, dt, args.backend)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_parity(result)
    return 0


def _save_output(path: str, result, batched: bool) -> None:
    arrays = {name: (a if batched else a[0]) for name, a in result.outputs.items()}
    arrays["y"] = result.y if batched else result.y[0]
    np.savez(path, **arrays)


def _cmd_cosim(args: argparse.Namespace) -> int:
    inputs = _load_input(args.input) if args.input else None
    bundle, result, data = _cosim_summary(Path(args.bundle), inputs, args.mode, args.backend, not args.json,
                                          args.schedule, args.loihi, args.gpu, args.checkpoint, args.early_exit)
    if args.output:
        shape = bundle.manifest.spiking.input_shape or [None]
        _save_output(args.output, result, batched=inputs is None or inputs.ndim == len(shape) + 2)
    _emit(data, args.json)
    return 0


def _emit(data: dict, as_json: bool) -> None:
    """One JSON object on stdout, or the terminal table."""
    from neurodeploy.report.summary import print_summary

    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print_summary(data)


def _cmd_energy(args: argparse.Namespace) -> int:
    """Energy and latency per sample: co-simulate the reference inputs (or --input), price the counted events.
    A spiking-only bundle without --input is refused by run_cosim, which names the input it needs."""
    inputs = _load_input(args.input) if args.input else None
    _, _, data = _cosim_summary(Path(args.bundle), inputs, args.mode, args.backend, not args.json,
                                loihi=args.loihi, gpu=args.gpu)
    _emit(data, args.json)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from neurodeploy.report.html import write_html
    from neurodeploy.spiking.resources import map_resources

    inputs = _load_input(args.input) if args.input else None
    bundle, result, data = _cosim_summary(Path(args.bundle), inputs, args.mode, args.backend, progress=True,
                                          loihi=args.loihi, gpu=args.gpu)
    _emit(data, False)
    if args.html:
        m = bundle.manifest
        windows = (result.spikes[next(iter(result.spikes))].shape[1] // m.adapter.window) if m.adapter else 1
        path = write_html(Path(args.html), data, result.spikes, map_resources(result.plan, args.loihi).as_dict(),
                          windows)
        Console(stderr=True).print(f"HTML report written to {path}")
    return 0


def _torch_model(spec: str | None, weights: str | None, bundle):
    """The PyTorch model to compare with: --model (a zoo name or module:function), else the zoo model the
    bundle was compiled from, else None."""
    from neurodeploy.models import zoo
    from neurodeploy.compiler.pipeline import load_factory, load_weights

    spec = spec or (bundle.manifest.provenance.get("model") if bundle.manifest.provenance else None)
    if spec is None or (spec not in zoo.ZOO and ":" not in spec):
        return None
    if spec in zoo.ZOO:
        model = zoo.get(spec).build()
        return load_weights(model, Path(weights)) if weights else model
    return load_factory(spec, Path(weights) if weights else None)[0]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from neurodeploy.bundle import read_bundle
    from neurodeploy.analysis.evaluate import evaluate, load_dataset

    bundle = read_bundle(Path(args.bundle))
    x, labels = load_dataset(args.data)
    model = _torch_model(args.model, args.weights, bundle)
    result = evaluate(bundle, x, labels, args.backend, args.mode, args.schedule, model, args.chunk,
                      progress=not args.json, early_exit=args.early_exit)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    console = Console()
    console.print(f"{result.samples} samples, {result.backend} ({result.mode}), schedule {result.schedule}: "
                  f"deployed accuracy {result.accuracy:.2%}")
    if result.torch_accuracy is not None:
        console.print(f"PyTorch accuracy {result.torch_accuracy:.2%}; the two predict the same class on "
                      f"{result.agreement:.2%} of the samples")
    console.print(f"{result.sops_per_sample:,.0f} SOPs per sample; {result.wall_s:.2f} s in all")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from neurodeploy.models import zoo
    from neurodeploy.compiler.pipeline import compile_zoo

    out = Path(args.out)
    console = Console(stderr=True)
    entry = zoo.get(zoo.DEFAULT_MODEL)
    console.print(f"compiling '{entry.name}' ({entry.description})")
    bundle_path = compile_zoo(entry.name, out / "bundle", args.samples)
    console.print(f"bundle: {bundle_path}; co-simulating {args.samples} samples (Lava floating_pt + ONNX Runtime, "
                  f"schedule {entry.schedule})")
    from neurodeploy.bundle import read_bundle

    dense = read_bundle(bundle_path).manifest.dense
    _, _, data = _cosim_summary(bundle_path, None, "float", "lava", progress=True, schedule=entry.schedule,
                                early_exit=dense is not None and dense.exit_threshold is not None)
    (out / "report.json").write_text(json.dumps(data, indent=2))
    _emit(data, False)
    console.print(f"report written to {out / 'report.json'}")
    return 0


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--loihi", default="loihi2", help="neuromorphic profile: a name in hw_profiles/ or a .json path "
                                                     "(default loihi2)")
    p.add_argument("--gpu", default="h100", help="GPU profile: a name in hw_profiles/ or a .json path (default h100)")


def _backend_arg(p: argparse.ArgumentParser, default: str = "lava") -> None:
    from neurodeploy.runtime.runners import BACKENDS

    p.add_argument("--backend", choices=list(BACKENDS), default=default,
                   help="lava: Lava's CPU simulation, one sample at a time; emulator: the batched emulator, "
                        f"bit-exact with Lava fixed_pt, on a GPU when present (default {default})")


def _costed(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A sub-command that co-simulates a bundle and prices it: BUNDLE, --input and the profiles."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("bundle")
    p.add_argument("--input", help=".npy inputs; required for a spiking-only bundle (hybrids use their reference run)")
    p.add_argument("--mode", choices=["float", "fixed"], default="float")
    _backend_arg(p)
    _profile_args(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurodeploy", description=__doc__.split("\n")[0].strip("`: "))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="compile and co-simulate the bundled default model, print a report")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("compile", help="compile a model or a .nir/.net spiking graph into a deployment bundle")
    p.add_argument("model", help="a bundled zoo model name, a package.module:function factory, "
                                 "or a .nir / netx .net file (spiking-only)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="reference samples to store")
    p.add_argument("--dt", type=float, help="time step in seconds for .nir/.net files whose metadata has none "
                                            "(default: the graph's metadata, else 1e-4 for NIR, 1e-3 for netx)")
    p.add_argument("--profile", default="loihi2", help="neuromorphic profile for the resource map (default loihi2)")
    p.add_argument("--weights", help="state_dict (.pt) to load into a module:function model")
    p.add_argument("--cut", help="name of the last spiking module (default: found automatically)")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("parity", help="layer-by-layer: float reference vs the back-end's float and fixed runs")
    p.add_argument("source", help="a .nir / .net file or a bundle folder")
    p.add_argument("--input", required=True, help=".npy, time-major (T, *input_shape)")
    p.add_argument("--dt", type=float, help="time step in seconds (as for compile)")
    _backend_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_parity)

    p = sub.add_parser("cosim", help="co-simulate a bundle (Lava + ONNX Runtime) and compare with PyTorch")
    p.add_argument("bundle")
    p.add_argument("--input", help=".npy, time-major: (T, *input_shape) or (B, T, *input_shape); "
                                   "default: the bundle's reference inputs")
    p.add_argument("--output", help=".npz to write: spikes per NIR Output node and y, aligned to the input")
    p.add_argument("--mode", choices=["float", "fixed"], default="float")
    _backend_arg(p)
    p.add_argument("--schedule", choices=list(get_args(Schedule)), default="end",
                   help="end: whole-sequence dense model once per sample; window: streaming step model per window; "
                        "event: step model on salient windows only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--checkpoint", help="folder for partial results, saved after every sample; rerun to resume")
    p.add_argument("--early-exit", action="store_true",
                   help="stop each sample at the first window whose output reaches the bundle's exit confidence; "
                        "the report prices the run up to there, beside the full run")
    _profile_args(p)
    p.set_defaults(func=_cmd_cosim)

    p = sub.add_parser("evaluate", help="accuracy of the deployed model over a labelled test set, beside PyTorch's")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help=".npz with x (B, T, *input_shape) and labels (B,)")
    p.add_argument("--mode", choices=["float", "fixed"], default="fixed")
    p.add_argument("--schedule", choices=list(get_args(Schedule)), default="end")
    p.add_argument("--model", help="PyTorch model to compare with: a zoo name or module:function "
                                   "(default: the zoo model the bundle was compiled from)")
    p.add_argument("--weights", help="state_dict (.pt) for --model")
    p.add_argument("--chunk", type=int, default=256, help="samples per co-simulation call (memory)")
    p.add_argument("--early-exit", action="store_true", help="predict from each sample's early-exit window")
    p.add_argument("--json", action="store_true")
    _backend_arg(p, default="emulator")
    p.set_defaults(func=_cmd_evaluate)

    p = _costed(sub, "energy", "energy and latency per sample: Loihi + link + GPU vs all-GPU, and the 45 nm tier")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_energy)

    p = _costed(sub, "report", "co-simulate a bundle, print the summary, optionally write an HTML report")
    p.add_argument("--html", help="write a self-contained HTML report (plots, resource map, assumptions) here")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    from neurodeploy.bundle import BundleError
    from neurodeploy.runtime.cosim import InputShapeError, ScheduleError
    from neurodeploy.runtime.emulator import EmulatorError
    from neurodeploy.analysis.evaluate import DatasetError
    from neurodeploy.cost.profiles import ProfileError
    from neurodeploy.runtime.lava_runner import LavaRunError
    from neurodeploy.spiking.plan import SpikingPlanError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, BundleError, InputShapeError, ScheduleError, LavaRunError, EmulatorError, SpikingPlanError,
            ProfileError, DatasetError, NotImplementedError) as exc:
        print(f"neurodeploy {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
