"""``neurodeploy``: compile, co-simulate and cost hybrid spiking + dense models.

    neurodeploy demo [--out DIR] [--samples N]
    neurodeploy compile MODEL|module:function|FILE.nir|FILE.net --out BUNDLE [--samples N] [--weights W.pt]
                        [--cut NAME] [--dt SECONDS] [--profile loihi2] [--schedule end|window|event]
                        [--discretisation euler|exact] [--fix EXPORTER] [--max-chips N]
                        [--event-threshold SPIKES] [--exit-threshold CONFIDENCE] [--prefix-runner]
    neurodeploy cosim BUNDLE [--input X.npy [--steps T]] [--output Y.npz] [--mode float|fixed] [--backend lava|emulator]
                      [--schedule S] [--early-exit] [--checkpoint DIR] [--json]
    neurodeploy energy BUNDLE [--loihi PROFILE] [--gpu PROFILE] [--input X.npy [--steps T]] [--schedule S] [--early-exit] [--json]
    neurodeploy report BUNDLE [--html OUT.html] [--schedule S] [--early-exit]
    neurodeploy evaluate BUNDLE --data D.npz [--backend emulator|lava] [--mode fixed|float] [--model NAME] [--json]
                         [--checkpoint DIR]
                         [--workers N] [--ray auto|local|ADDRESS]
    neurodeploy benchmark BUNDLE --data D.npz [--model NAME] [--mode fixed|float] [--backend emulator|lava] [--json]
    neurodeploy sweep CONFIG.toml --out DIR [--workers N] [--ray auto|local|ADDRESS] [--json]
    neurodeploy parity FILE.nir|FILE.net|BUNDLE --input X.npy [--labels Y.npy] [--dt SECONDS] [--backend lava|emulator] [--json]
                       [--discretisation euler|exact] [--fix EXPORTER]

A thin layer over the public API (:mod:`neurodeploy.api`): each sub-command parses its arguments,
makes the API calls and prints. Every :class:`~neurodeploy.errors.NeurodeployError` is printed as
one line on stderr with exit code 2. Only argparse, json and the error module are imported at start,
so ``--help`` and argument errors answer at once; the API imports torch and Lava where it needs them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from neurodeploy.choices import BACKENDS, DEFAULT_SAMPLES, DISCRETISATIONS, MODES, PRECISIONS, SCHEDULES
from neurodeploy.errors import NeurodeployError, UsageError, one_line


def _console():
    from neurodeploy.tables import stderr_console

    return stderr_console()


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _load_input(path: str | None, option: str = "--input"):
    if path is None:
        return None
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {option} {path}: {exc}; save the array with np.save(path, x)") from exc


def _cmd_compile(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.report.terminal import print_quantization

    bundle = nd.compile(args.model, args.out, dt_s=args.dt, cut=args.cut, profile=args.profile,
                        schedule=args.schedule, samples=args.samples, weights=args.weights,
                        discretisation=args.discretisation, fixes=args.fix, precision=args.precision,
                        calibration=_load_input(args.calibration, "--calibration"), max_chips=args.max_chips,
                        event_threshold=args.event_threshold, exit_threshold=args.exit_threshold,
                        prefix_runner=args.prefix_runner)
    console, m = _console(), bundle.manifest.spiking
    if m is None:
        return _compiled_for_gpu_only(bundle, console)
    console.print(f"dt = {m.dt_s:g} s; input shape {tuple(m.input_shape)}; delay compensation {m.total_delay_steps} "
                  f"steps; schedule {bundle.manifest.default_schedule}")
    if bundle.manifest.dense is not None and bundle.manifest.adapter is None:
        console.print(f"the dense part is the model's own code after the cut, exported at T={bundle.manifest.num_steps} "
                      "steps: it runs once per sample (schedule end; no streaming step model is derived for it)")
    for p in bundle.manifest.placement:
        console.print(f"  {p.module}: {p.device} ({p.reason})")
    if m.resources:
        res = m.resources
        console.print(f"resources on {res['profile']}: {res['cores']} cores, {res['chips']} chip(s)")
        for pop in res["populations"]:
            name = m.module_paths.get(pop["name"], pop["name"])
            tile = " x ".join(str(d) for d in pop.get("tile", [])) or "?"
            console.print(f"  {name}: {pop['neurons']:,} neurons on {pop['cores']} core(s) of {tile}, "
                          f"{pop['synapses']:,} synapses, fan-in {pop['fan_in']:,}, fan-out {pop['fan_out']:,} "
                          f"axons per core; binding limit: {pop.get('limit') or '?'}")
    if m.quantization:
        print_quantization(m.quantization, m.module_paths, console)
    if m.quantization_error:
        console.print(f"no fixed-point form (float runs only): {one_line(m.quantization_error)}")
    console.print(f"bundle written to {bundle.path}")
    return 0


def _compiled_for_gpu_only(bundle, console) -> int:
    """What ``compile`` prints for a model Loihi cannot start: it runs wholly on the GPU, and why."""
    m = bundle.manifest
    console.print(f"Loihi cannot start this model: it runs wholly on the GPU, exported at T={m.num_steps} steps "
                  f"(input shape {m.sample_shape}; schedule end)")
    for p in m.placement:
        console.print(f"  {p.module}: {p.device} ({p.reason})")
    console.print(f"bundle written to {bundle.path}")
    return 0


def _run_and_price(args: argparse.Namespace, progress: bool, inputs=None):
    """The co-simulation of ``inputs`` (read from --input) and its price, as every costed sub-command runs them."""
    import neurodeploy as nd

    bundle = nd.load(args.bundle)
    result = nd.cosimulate(bundle, inputs, mode=args.mode, backend=args.backend,
                           schedule=args.schedule, early_exit=args.early_exit,
                           checkpoint=getattr(args, "checkpoint", None), progress=progress, model=args.model,
                           weights=args.weights, device=args.device, steps=args.steps, threads=args.threads)
    return bundle, result, nd.estimate(bundle, result, loihi=args.loihi, gpu=args.gpu)


def _cmd_cosim(args: argparse.Namespace) -> int:
    inputs = _load_input(args.input)
    bundle, result, cost = _run_and_price(args, not (args.json or args.quiet), inputs)
    if args.output:
        _save_output(args.output, bundle, result, None if args.steps else inputs)  # frames: always a batch
    _emit(bundle, result, cost, args.json)
    return 0


def _save_output(path: str, bundle, result, inputs) -> None:
    """Every output node's spikes and ``y``, time-major, for every sample: one sample's without the batch axis
    when ``--input`` was one sample ((T, *shape) or (T, n_in)); written atomically."""
    import numpy as np

    from neurodeploy.bundle.atomic import write_file

    shape = bundle.manifest.sample_shape
    one_sample = inputs is not None and inputs.ndim in (len(shape) + 1, 2)
    arrays = {name: (a[0] if one_sample else a) for name, a in result.outputs.items()}
    arrays["y"] = result.y[0] if one_sample else result.y
    write_file(path, lambda f: np.savez(f, **arrays))


def _emit(bundle, result, cost, as_json: bool) -> None:
    """One JSON object on stdout, or the terminal table."""
    import neurodeploy as nd

    if as_json:
        print(json.dumps(cost.figures, indent=2), flush=True)
    else:
        nd.write_report(bundle, result, cost)


def _cmd_energy(args: argparse.Namespace) -> int:
    """Energy and latency per sample: co-simulate the reference inputs (or --input), price the counted events."""
    bundle, result, cost = _run_and_price(args, not args.json, _load_input(args.input))
    _emit(bundle, result, cost, args.json)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import neurodeploy as nd

    bundle, result, cost = _run_and_price(args, True, _load_input(args.input))
    nd.write_report(bundle, result, cost)
    if args.html:
        _console().print(f"HTML report written to {nd.write_report(bundle, result, cost, args.html)}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.analysis.evaluate import load_dataset
    from neurodeploy.units import number, si

    x, labels = load_dataset(args.data)
    result = nd.evaluate(args.bundle, x, labels, model=args.model, weights=args.weights, backend=args.backend,
                         mode=args.mode, schedule=args.schedule, chunk=args.chunk, early_exit=args.early_exit,
                         progress=not (args.json or args.quiet), workers=args.workers, ray=args.ray,
                         checkpoint=args.checkpoint, device=args.device, threads=args.threads)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), flush=True)
        return 0
    out = print
    out(f"{result.samples} samples, {result.backend} ({result.mode}), schedule {result.schedule}: "
        f"deployed accuracy {result.accuracy:.2%}")
    if result.torch_accuracy is not None:
        out(f"PyTorch accuracy {result.torch_accuracy:.2%}; the two predict the same class on "
            f"{result.agreement:.2%} of the samples")
    elif result.note:
        out(result.note)
    out(f"{number(result.sops_per_sample)} SOPs per sample; {si(result.wall_s, 's')} in all")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.analysis.benchmark import FIELDS
    from neurodeploy.analysis.evaluate import load_dataset
    from neurodeploy.units import number, si

    x, labels = load_dataset(args.data)
    flat = nd.benchmark(args.bundle, x, labels, model=args.model, weights=args.weights, backend=args.backend,
                        mode=args.mode, schedule=args.schedule, loihi=args.loihi, gpu=args.gpu,
                        price_samples=args.price_samples, device=args.device, threads=args.threads)
    if args.json:
        print(json.dumps(flat, indent=2), flush=True)
        return 0
    for key, value in flat.items():
        shown = si(value, {"j": "J", "s": "s"}[key[-1]]) if key.endswith(("_j", "_s")) and value is not None else \
            number(value) if isinstance(value, (int, float)) else "n/a" if value is None else str(value)
        print(f"{key:<24} {shown:>14}  {FIELDS[key]}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.report.sweep_html import print_front

    result = nd.sweep(args.config, args.out, workers=args.workers, ray=args.ray,
                      progress=not (args.json or args.quiet))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), flush=True)
        return 0 if not result.failed else 1
    print_front(result.rows)
    print(f"{len(result.rows)} configurations in {args.out}/results.csv ({result.computed} computed, "
          f"{result.resumed} resumed), {sum(len(f['configs']) for f in result.failed)} failed, "
          f"{sum(len(f['configs']) for f in result.not_applicable)} not applicable; "
          f"report {args.out}/sweep.html; {result.wall_s:.1f} s")
    for f in result.failed:
        print(f"  failed {', '.join(f['configs'])}: {f['error']}")
    reasons: dict[str, int] = {}
    for f in result.not_applicable:
        reasons[f["error"]] = reasons.get(f["error"], 0) + len(f["configs"])
    for reason, count in reasons.items():
        print(f"  not applicable ({count}): {reason}")
    return 0 if not result.failed else 1


def _cmd_parity(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.analysis.parity import print_parity

    result = nd.parity(args.source, _load_input(args.input), dt_s=args.dt, backend=args.backend,
                       discretisation=args.discretisation, fixes=args.fix,
                       labels=_load_input(args.labels, "--labels"))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), flush=True)
    else:
        print_parity(result)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import neurodeploy as nd
    from neurodeploy.models import zoo

    out, console = Path(args.out), _console()
    entry = zoo.get(zoo.DEFAULT_MODEL)
    console.print(f"compiling '{entry.name}' ({entry.description})")
    bundle = nd.compile(entry.name, out / "bundle", samples=args.samples)
    dense = bundle.manifest.dense
    console.print(f"bundle: {bundle.path}; co-simulating {args.samples} samples (Lava floating_pt + ONNX Runtime, "
                  f"schedule {bundle.manifest.default_schedule})")
    result = nd.cosimulate(bundle, mode="float", backend="lava", progress=not args.quiet,
                           early_exit=dense is not None and dense.exit_threshold is not None)
    cost = nd.estimate(bundle, result)
    report = nd.write_report(bundle, result, cost, out / "report.json")
    nd.write_report(bundle, result, cost)
    console.print(f"report written to {report}")
    return 0


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--loihi", help="neuromorphic profile: a name (see hw_profiles/, $NEURODEPLOY_PROFILE_PATH) or a "
                                   ".json path (default: the profile the bundle was compiled for)")
    p.add_argument("--gpu", default="h100", help="GPU profile: a name or a .json path (default h100)")


def _backend_arg(p: argparse.ArgumentParser, default: str = "lava", device: bool = True) -> None:
    p.add_argument("--backend", choices=list(BACKENDS), default=default,
                   help="lava: Lava's CPU simulation, one sample at a time; emulator: the batched emulator, "
                        f"bit-exact with Lava fixed_pt, on a GPU when present (default {default}: Lava where a run "
                        "is checked or priced, the emulator where a dataset runs)")
    if device:
        _device_arg(p)


def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                   help="where the emulator and the dense part (ONNX Runtime) compute: auto (default: a GPU where "
                        "torch and onnxruntime have one), cpu, cuda or cuda:N; Lava runs on the CPU")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads torch and ONNX Runtime compute on (default: the cores this process may run on; "
                        "with --workers, each worker's share)")


def _schedule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", choices=list(SCHEDULES),
                   help="end: whole-sequence dense model once per sample; window: streaming step model per window; "
                        "event: step model on salient windows only (default: the bundle's own schedule)")
    p.add_argument("--early-exit", action="store_true",
                   help="stop each sample at the first window whose output reaches the bundle's exit confidence; "
                        "the report prices the run up to there, beside the full run")


def _costed(sub, name: str, help_text: str, json_flag: bool = True) -> argparse.ArgumentParser:
    """A sub-command that co-simulates a bundle and prices it: BUNDLE, --input, mode, backend, schedule, profiles."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("bundle")
    p.add_argument("--input", help=".npy, time-major: (T, *input_shape) or (B, T, *input_shape); "
                                   "default: the bundle's reference inputs (required for a spiking-only bundle)")
    p.add_argument("--steps", type=_positive_int, metavar="T",
                   help="--input holds frames, one per sample (B, *input_shape), each held for T steps as the input "
                        "layer's bias, as lava-dl drives a netx network")
    p.add_argument("--mode", choices=list(MODES), default="float")
    _backend_arg(p)
    _schedule_args(p)
    _profile_args(p)
    p.add_argument("--model", help="PyTorch model to compare with on --input: a zoo name or module:function "
                                   "(default: the zoo model the bundle was compiled from; a factory named in a "
                                   "bundle is never imported)")
    p.add_argument("--weights", help="state_dict (.pt) for --model")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _add_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile a model or a .nir/.net spiking graph into a deployment bundle")
    p.add_argument("model", help="a bundled zoo model name, a package.module:function factory, "
                                 "or a .nir / netx .net file (spiking-only)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="reference samples to store")
    p.add_argument("--dt", type=float, help="time step in seconds (.nir/.net files whose metadata has none: default "
                                            "1e-4 for NIR, 1e-3 for netx; a model: default its factory's)")
    p.add_argument("--profile", default="loihi2", help="neuromorphic profile the spiking part is quantized and "
                                                       "mapped for (default loihi2)")
    p.add_argument("--schedule", choices=list(SCHEDULES), help="deployment schedule recorded in the bundle "
                                                               "(default: window for a streaming back-end, else end)")
    p.add_argument("--weights", help="state_dict (.pt) to load into a module:function or zoo model")
    p.add_argument("--cut", help="name of the last spiking module (default: found automatically)")
    p.add_argument("--max-chips", type=_positive_int, metavar="N", dest="max_chips",
                   help="chip budget: refuse a spiking part that needs more than N chips of the profile")
    p.add_argument("--precision", choices=list(PRECISIONS), default="auto",
                   help="fixed-point weights: auto (default: two synapses per weight, about 14 bits, where the "
                        "profile's cores hold them), double, or single (8-bit mantissas)")
    p.add_argument("--event-threshold", type=float, dest="event_threshold", metavar="SPIKES",
                   help="a model whose own dense code streams: cut spikes per window that wake it (the event schedule)")
    p.add_argument("--exit-threshold", type=float, dest="exit_threshold", metavar="CONFIDENCE",
                   help="a model whose own dense code streams: softmax confidence after a window that ends the "
                        "sample (early exits)")
    p.add_argument("--prefix-runner", action="store_true", dest="prefix_runner",
                   help="a model whose own dense code no state carry streams: re-run it on the windows so far "
                        "(exact; one ONNX graph per number of windows)")
    p.add_argument("--calibration", metavar="FILE.npy",
                   help="inputs (B, T, ...) whose float run bounds each population's current (a finer grid than "
                        "the worst case)")
    _reading_args(p)
    p.set_defaults(func=_cmd_compile)


def _reading_args(p) -> None:
    """How a .nir file is read: its discretisation and the exporter fixes (recorded in the bundle)."""
    p.add_argument("--discretisation", choices=list(DISCRETISATIONS), default="euler",
                   help=".nir files: step NIR's ODEs by forward Euler (default; snnTorch, norse, SpikingJelly) or "
                        "exactly (zero-order hold; sinabs)")
    p.add_argument("--fix", action="append", default=[], metavar="EXPORTER",
                   help=".nir files: correct a known exporter defect (norse: tau written as dt*tau); repeatable")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of the deployed model over a labelled test set, beside PyTorch's")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help=".npz with x (B, T, *input_shape) and labels (B,)")
    p.add_argument("--mode", choices=list(MODES), default="fixed")
    _schedule_args(p)
    p.add_argument("--model", help="PyTorch model to compare with: a zoo name or module:function "
                                   "(default: the zoo model the bundle was compiled from)")
    p.add_argument("--weights", help="state_dict (.pt) for --model")
    p.add_argument("--chunk", type=int, default=256, help="samples per co-simulation call (memory)")
    p.add_argument("--checkpoint", help="folder for finished chunks, appended as they finish; rerun to resume")
    p.add_argument("--json", action="store_true")
    _backend_arg(p, default="emulator")
    _scale_args(p)
    p.set_defaults(func=_cmd_evaluate)


def _add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="one flat table: accuracy, agreement, operations, static metrics, energy "
                                         "and latency by device, the all-GPU baseline (NeuroBench's names)")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help=".npz with x (B, T, *input_shape) and labels (B,)")
    p.add_argument("--mode", choices=list(MODES), default="fixed")
    p.add_argument("--schedule", choices=list(SCHEDULES), help="default: the bundle's own schedule")
    p.add_argument("--model", help="PyTorch model for agreement, its accuracy and the static metrics: a zoo name or "
                                   "module:function (default: the zoo model the bundle was compiled from)")
    p.add_argument("--weights", help="state_dict (.pt) for --model")
    p.add_argument("--price-samples", type=_positive_int, default=8, dest="price_samples",
                   help="samples co-simulated and priced (default 8; all of --data are evaluated)")
    _profile_args(p)
    p.add_argument("--json", action="store_true", help="print the dict as one JSON object")
    _backend_arg(p, default="emulator")
    p.set_defaults(func=_cmd_benchmark)


def _scale_args(p) -> None:
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    p.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto (the one `ray start` made), local "
                                                    "(a new one on this machine) or its address; needs "
                                                    "pip install 'neurodeploy[ray]'")


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="evaluate and price a grid of deployment choices; table, Pareto front, report")
    p.add_argument("config", help="TOML file: model, data, and a [grid] of cut, mode, loihi, gpu, schedule, "
                                  "early_exit (format: neurodeploy.sweeps.config)")
    p.add_argument("--out", required=True, help="folder for results.csv/.jsonl/.json, bundles/ and sweep.html; "
                                                "rerun with the same folder to resume")
    p.add_argument("--json", action="store_true")
    _scale_args(p)
    p.set_defaults(func=_cmd_sweep)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``neurodeploy cosim: error: UsageError: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: UsageError: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from neurodeploy._version import __version__

    parser = _Parser(prog="neurodeploy", description=__doc__.split("\n")[0].split(": ", 1)[1])
    parser.add_argument("--version", action="version", version=f"neurodeploy {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="log every stage (default: stages on a terminal, warnings only when piped)")
    loudness.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="compile and co-simulate the bundled default model, print a report")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    p.set_defaults(func=_cmd_demo)
    _add_compile(sub)

    p = sub.add_parser("parity", help="layer-by-layer: float reference vs the back-end's float and fixed runs")
    p.add_argument("source", help="a .nir / .net file or a bundle folder")
    p.add_argument("--input", required=True, help=".npy, time-major (T, *input_shape), or a batch (B, T, ...)")
    p.add_argument("--labels", help=".npy (B,): the classes of a batch; prints each stage's accuracy")
    p.add_argument("--dt", type=float, help="time step in seconds (as for compile)")
    _reading_args(p)
    _backend_arg(p, device=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_parity)

    p = _costed(sub, "cosim", "co-simulate a bundle (Lava + ONNX Runtime) and compare with PyTorch")
    p.add_argument("--output", help=".npz to write: spikes per NIR Output node and y, aligned to the input")
    p.add_argument("--checkpoint", help="folder for partial results, appended after every sample; rerun to resume")
    p.set_defaults(func=_cmd_cosim)
    _add_evaluate(sub)
    _add_benchmark(sub)
    _add_sweep(sub)
    _costed(sub, "energy", "energy and latency per sample: Loihi + link + GPU vs all-GPU, and the 45 nm tier"
            ).set_defaults(func=_cmd_energy)
    p = _costed(sub, "report", "co-simulate a bundle, print the summary, optionally write an HTML report",
                json_flag=False)
    p.add_argument("--html", help="write a self-contained HTML report (plots, resource map, assumptions) here")
    p.set_defaults(func=_cmd_report)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run stops cleanly (Lava stopped, the checkpoint kept)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a named error is one line on stderr and exit code 2. Ctrl-C (130) and SIGTERM
    (143) stop the run cleanly with one line."""
    import signal

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        with _status_line(args), _current_folder_importable():
            _configure_logging(args)
            return args.func(args)
    except NeurodeployError as exc:
        print(f"neurodeploy {args.command}: error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (``| head``): nothing more to say to it
        _silence_stdout()
        return 141
    except OSError as exc:  # a disk or permission failure not named where it happened
        print(f"neurodeploy {args.command}: error: DiskError: {exc.strerror or exc}"
              f"{' (' + str(exc.filename) + ')' if exc.filename else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"neurodeploy {args.command}: {'terminated' if terminated else 'interrupted'}"
              f"{'; partial results are in ' + args.checkpoint if getattr(args, 'checkpoint', None) else ''}",
              file=sys.stderr)
        return 143 if terminated else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _status_line(args: argparse.Namespace):
    """On a terminal (not with ``-q``): a status line on stderr from the start, ``neurodeploy COMMAND`` with a
    spinner, naming each stage as the log reports it (the log's lines, with the seconds so far, print above
    it); progress bars draw beneath it. Gone when the command ends."""
    if args.quiet or not sys.stderr.isatty():
        yield
        return
    from neurodeploy.tables import bound_console

    title = f"neurodeploy {args.command}"
    with bound_console() as console, console.status(title) as status:
        handler = _StatusHandler(status, title)
        logging.getLogger("neurodeploy").addHandler(handler)
        try:
            yield
        finally:
            logging.getLogger("neurodeploy").removeHandler(handler)


class _StatusHandler(logging.Handler):
    """Shows the last stage the log named on the status line."""

    def __init__(self, status, title: str) -> None:
        super().__init__(logging.INFO)
        self.status, self.title = status, title

    def emit(self, record: logging.LogRecord) -> None:
        self.status.update(f"{self.title}: {one_line(record.getMessage())[:100]}")


def _configure_logging(args: argparse.Namespace) -> None:
    """neurodeploy's log (Python ``logging``, logger ``neurodeploy``) on stderr: stages (INFO) on a terminal
    or with ``-v`` (DEBUG), warnings only when stderr is piped (one line per error stays one line), nothing
    but errors with ``-q``."""
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else \
        logging.INFO if sys.stderr.isatty() else logging.WARNING
    logger = logging.getLogger("neurodeploy")
    logger.setLevel(level)
    if not any(getattr(h, "_neurodeploy_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("neurodeploy: %(message)s"))
        handler._neurodeploy_cli = True
        logger.addHandler(handler)
    if not args.verbose:  # torch's own notices (e.g. "Triton not available" when a model's library registers
        import torch  # noqa: F401  (its kernels) would break the one-line error; torch sets its level on import

        logging.getLogger("torch").setLevel(logging.ERROR)


@contextmanager
def _current_folder_importable():
    """``neurodeploy compile my_pkg.models:make`` run from the folder that holds ``my_pkg`` finds it (as
    ``python -m`` would; the console script's path does not include the current folder)."""
    added = "" not in sys.path and os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        yield
    finally:
        if added and os.getcwd() in sys.path:
            sys.path.remove(os.getcwd())


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
