"""The public flow, as in hls4ml: compile -> cosimulate -> estimate -> report, plus evaluate and parity.

    import neurodeploy as nd
    bundle = nd.compile(model, "out/b", inputs=x)        # an nn.Module, a .nir/.net file or a zoo name
    result = nd.cosimulate(bundle, x_new, mode="fixed", backend="emulator")   # schedule: the bundle's own
    cost   = nd.estimate(bundle, result, loihi="loihi2", gpu="h100")
    nd.write_report(bundle, result, cost, "report.html")
    nd.evaluate(bundle, x_test, labels, model=model)

Every function takes a :class:`~neurodeploy.bundle.Bundle` or the path of one. ``schedule=None``
means the bundle's own deployment schedule (``Manifest.default_schedule``) in every call. Errors are
:class:`~neurodeploy.errors.NeurodeployError` subclasses. Heavy modules (torch, Lava, ONNX Runtime) are
imported inside the calls, so ``import neurodeploy`` and the CLI's ``--help`` stay fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurodeploy.choices import DEFAULT_SAMPLES
from neurodeploy.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from neurodeploy.analysis.evaluate import Evaluation
    from neurodeploy.analysis.parity import ParityResult
    from neurodeploy.bundle import Bundle
    from neurodeploy.cost.pricing import CostReport
    from neurodeploy.runtime.cosim import CosimResult
    from neurodeploy.sweeps.run import SweepResult


def load(path: str | Path) -> Bundle:
    """Read and verify (checksums, schema) a bundle written by :func:`compile`."""
    from neurodeploy.bundle import read_bundle

    return read_bundle(Path(path))


def _bundle(bundle: Bundle | str | Path) -> Bundle:
    return load(bundle) if isinstance(bundle, (str, Path)) else bundle


def compile(model: Any, out: str | Path, *, inputs: Any = None, dt_s: float | None = None, cut: str | None = None,
            profile: str = "loihi2", schedule: str | None = None, samples: int = DEFAULT_SAMPLES,
            weights: str | Path | None = None, name: str | None = None, discretisation: str = "euler",
            fixes: tuple[str, ...] | list[str] = (), precision: str = "auto", calibration: Any = None,
            max_chips: int | None = None, event_threshold: float | None = None,
            exit_threshold: float | None = None, prefix_runner: bool = False) -> Bundle:
    """Compile ``model`` into a deployment bundle at ``out`` and return it.

    ``model`` is one of: an ``nn.Module`` (with ``inputs`` (B, T, *input_shape), the examples stored as the
    bundle's reference), a bundled zoo name (``"liquidspikeformer"``), a ``"package.module:function"``
    factory, the path of a ``.nir`` / netx ``.net`` spiking graph, or a ``nir.NIRGraph`` as a framework's
    ``to_nir`` returns it (types it leaves empty are filled). ``profile`` is the neuromorphic
    profile the spiking part is quantized and mapped for; ``schedule`` the deployment schedule recorded in
    the bundle (default: ``window`` for a streaming back-end, else ``end``); ``cut`` the last spiking module
    of a flat ``nn.Sequential``; ``weights`` a ``state_dict`` file for a factory or zoo model.
    For a NIR graph, ``discretisation`` is how NIR's ODEs are stepped (``euler``, as snnTorch, norse and
    SpikingJelly; ``exact``, zero-order hold, as sinabs) and ``fixes`` names known exporter defects to
    correct (``["norse"]``); both are recorded in the bundle. A PyTorch model is stepped as it steps itself.
    Fixed point (:mod:`neurodeploy.spiking.quantize`): ``precision`` ``"auto"`` (two synapses per weight,
    about 14-bit weights, where the profile's cores hold them), ``"double"`` or ``"single"`` (8-bit);
    ``calibration``: inputs (B, T, *input_shape) whose float run bounds each population's current instead of
    the worst case (a finer grid), or ``True`` for a model's example ``inputs``. The choice is stored in the bundle.
    ``max_chips``: the chip budget: a spiking part that needs more chips of ``profile`` is refused
    (``ModelDoesNotFitError``, each population's cores and the per-core limit that binds it).
    A model captured as written whose dense code streams (:mod:`neurodeploy.compiler.stepping`):
    ``event_threshold`` (cut spikes per window that wake its dense part: the ``event`` schedule) and
    ``exit_threshold`` (softmax confidence of its output after a window that ends the sample: early exits);
    ``prefix_runner``: where no state carry reproduces its code, re-run it on the windows so far (exact; one
    ONNX graph per number of windows, so a longer compile; work growing with the square of the windows).
    """
    from neurodeploy.compiler.any_model import compile_model

    return load(compile_model(model, out, inputs=inputs, dt_s=dt_s, cut=cut, profile=profile, schedule=schedule,
                              samples=samples, weights=weights, name=name, discretisation=discretisation, fixes=fixes,
                              precision=precision, calibration=calibration, max_chips=max_chips,
                              event_threshold=event_threshold, exit_threshold=exit_threshold,
                              prefix_runner=prefix_runner))


def cosimulate(bundle: Bundle | str | Path, inputs: np.ndarray | None = None, *, mode: str = "float",
               backend: str = "lava", schedule: str | None = None, early_exit: bool = False,
               checkpoint: str | Path | None = None, progress: bool = False, model: Any = None,
               weights: str | Path | None = None, device: str | None = None,
               steps: int | None = None, threads: int | None = None) -> CosimResult:
    """Run the bundle: the spiking part on ``backend`` (``lava`` or the bit-exact ``emulator``) in ``mode``
    (``float`` or ``fixed``), its spikes into the dense part on ONNX Runtime. ``inputs`` (B, T, ...) or
    (T, ...) (for a bundle of a model that takes (T, B, ...): (T, B, ...)), default the bundle's reference
    inputs; ``schedule=None`` is the bundle's own; ``device``: where the emulator and the dense part compute
    (``None``/``"auto"``: a GPU where torch and onnxruntime have one, ``"cpu"``, ``"cuda"``, ``"cuda:N"``).
    ``steps``: ``inputs`` are frames, one per sample ``(B, *input_shape)``, each held for ``steps`` steps as the
    input layer's bias, as lava-dl drives a netx network (:func:`neurodeploy.runtime.inputs.frames_as_bias`).
    ``threads``: how many threads torch and ONNX Runtime compute on (default torch's setting: the cores this
    process may run on).

    ``result.agreement`` compares with PyTorch: on the reference inputs against the outputs stored in the
    bundle; on any other inputs against ``model`` (an ``nn.Module``, a zoo name or a factory, with
    ``weights``) run on them, by default the zoo model the bundle was compiled from (a factory named in a
    bundle is never imported: pass it as ``model``).
    """
    from neurodeploy.analysis.agreement import compare_with_torch
    from neurodeploy.compiler.resolve import no_model_note, torch_reference_for
    from neurodeploy.runtime.cosim import run_cosim
    from neurodeploy.runtime.inputs import from_model_layout

    bundle = _bundle(bundle)
    if steps is not None:
        from neurodeploy.runtime.inputs import frames_as_bias

        inputs = frames_as_bias(bundle, inputs, steps)
    inputs = from_model_layout(inputs, bundle.manifest)
    result = run_cosim(bundle, inputs, mode=mode, backend=backend, progress=progress,
                       schedule=schedule or bundle.manifest.default_schedule, checkpoint=checkpoint,
                       early_exit=early_exit, device=device, threads=threads)
    result.agreement = compare_with_torch(bundle, result, inputs, torch_reference_for(bundle, model, weights),
                                          no_model_note(bundle, model))
    return result


def estimate(bundle: Bundle | str | Path, result: CosimResult, *, loihi: str | None = None,
             gpu: str = "h100") -> CostReport:
    """Price ``result``: SOPs, MACs, energy and latency per sample by device, the all-GPU baseline and the
    45 nm tier, every figure's source listed (``loihi``: default the profile the bundle was compiled for)."""
    from neurodeploy.cost.pricing import price

    return price(_bundle(bundle), result, loihi, gpu)


def write_report(bundle: Bundle | str | Path, result: CosimResult, cost: CostReport,
                 path: str | Path | None = None) -> Path | None:
    """The report of a priced run: printed to the terminal when ``path`` is None, else written as a
    self-contained HTML page (``.html``) or as the JSON contract (``.json``). Returns the path written."""
    if path is None:
        from neurodeploy.report.terminal import print_summary

        print_summary(cost.figures)
        return None
    path = Path(path)
    if path.suffix.lower() == ".json":
        import json

        from neurodeploy.bundle.atomic import write_file

        return write_file(path, json.dumps(cost.figures, indent=2))
    if path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"report path {path} must end in .html or .json")
    from neurodeploy.report.html import write_html
    from neurodeploy.spiking.resources import map_resources

    bundle = _bundle(bundle)
    resources = None if result.plan is None else map_resources(result.plan, cost.loihi).as_dict()
    return write_html(path, cost.figures, result.spikes, resources, _windows(bundle, result))


def _windows(bundle: Bundle, result: CosimResult) -> int:
    m = bundle.manifest
    window = m.windowed(result.schedule)
    return result.inputs.shape[1] // window if window else 1


def evaluate(bundle: Bundle | str | Path, x: np.ndarray, labels: np.ndarray, *, model: Any = None,
             weights: str | Path | None = None, backend: str = "emulator", mode: str = "fixed",
             schedule: str | None = None, chunk: int | None = None, early_exit: bool = False,
             progress: bool = False, workers: int = 1, ray: str | None = None,
             checkpoint: str | Path | None = None, device: str | None = None,
             threads: int | None = None) -> Evaluation:
    """The deployed model's accuracy on ``(x, labels)`` and, beside it, the PyTorch model's (``model``: an
    ``nn.Module``, a zoo name or a factory; default the zoo model the bundle was compiled from). Chunks run
    on ``workers`` local processes, or on a Ray cluster with ``ray`` (``auto``, ``local`` or an address;
    the ``ray`` extra). With ``checkpoint`` (a folder) finished chunks are kept there and a rerun resumes.
    ``device`` and ``threads`` as :func:`cosimulate`'s (``threads`` per worker; default each worker's share)."""
    from neurodeploy.analysis.evaluate import DEFAULT_CHUNK
    from neurodeploy.analysis.evaluate import evaluate as run_evaluation
    from neurodeploy.compiler.resolve import model_for_bundle, no_model_note
    from neurodeploy.runtime.inputs import from_model_layout

    import numpy as np

    bundle, x, labels = _bundle(bundle), np.asarray(x), np.asarray(labels)  # torch tensors too
    x = from_model_layout(x, bundle.manifest)
    if chunk is not None and chunk < 1:
        raise UsageError(f"chunk must be >= 1 sample, got {chunk}")
    result = run_evaluation(bundle, x, labels, backend, mode, schedule or bundle.manifest.default_schedule,
                            model_for_bundle(bundle, model, weights), chunk or DEFAULT_CHUNK, progress=progress,
                            early_exit=early_exit, workers=workers, ray=ray, checkpoint=checkpoint, device=device,
                            threads=threads)
    result.note = None if result.torch_accuracy is not None else no_model_note(bundle, model, "PyTorch accuracy")
    return result


def benchmark(source: Any, x: np.ndarray, labels: np.ndarray, *, out: str | Path | None = None, model: Any = None,
              weights: str | Path | None = None, backend: str = "emulator", mode: str = "fixed",
              schedule: str | None = None, loihi: str | None = None, gpu: str = "h100", price_samples: int = 8,
              device: str | None = None, threads: int | None = None, **compile_options: Any) -> dict[str, Any]:
    """Everything about a deployment in one flat dict (keys and units:
    :data:`neurodeploy.analysis.benchmark.FIELDS`; NeuroBench's names where the figure is NeuroBench's).

    ``source``: a bundle (or its path), or anything :func:`compile` takes (then compiled into ``out``, with
    ``x``'s first samples as the example inputs unless ``inputs=`` is given; ``compile_options`` go to
    :func:`compile`). ``x``/``labels``: a labelled set in the model's layout, all of it evaluated
    (:func:`evaluate`); its first ``price_samples`` are co-simulated and priced (:func:`estimate`).
    ``model``: the PyTorch model for agreement, PyTorch's accuracy and the static metrics (default: the
    ``nn.Module`` given as ``source``, or the zoo model a bundle was compiled from). ``device`` and
    ``threads`` as :func:`cosimulate`'s."""
    import numpy as np
    from torch import nn

    from neurodeploy.analysis.benchmark import benchmark_dict
    from neurodeploy.compiler.resolve import model_for_bundle
    from neurodeploy.spiking.resources import map_resources

    if model is None and (isinstance(source, nn.Module) or (isinstance(source, str) and ":" in source)):
        model = source  # the module itself, or its "package.module:function" factory
    if not isinstance(source, (str, Path)) or not (Path(source) / "manifest.json").is_file():
        if out is None:
            raise UsageError("benchmark compiles its source first: give out= (the bundle's folder)")
        compile_options.setdefault("inputs", x[:price_samples] if isinstance(source, nn.Module) else None)
        source = compile(source, out, weights=weights, **compile_options)
    bundle = _bundle(source)
    torch_model = model_for_bundle(bundle, model, weights)
    evaluation = evaluate(bundle, x, labels, model=torch_model, backend=backend, mode=mode, schedule=schedule,
                          device=device, threads=threads)
    result = cosimulate(bundle, np.asarray(x)[:price_samples], mode=mode, backend=backend, schedule=schedule,
                        model=torch_model, device=device, threads=threads)
    cost = estimate(bundle, result, loihi=loihi, gpu=gpu)
    resources = None if result.plan is None else map_resources(result.plan, cost.loihi).as_dict()
    return benchmark_dict(evaluation, cost.figures, torch_model, resources)


def sweep(config: str | Path | dict, out: str | Path, *, workers: int = 1, ray: str | None = None,
          progress: bool = False) -> SweepResult:
    """Run (or resume) a design-space sweep: ``config`` a TOML file (or its dict, see
    :mod:`neurodeploy.sweeps.config`), results in the folder ``out`` (``results.csv``, ``results.jsonl``,
    ``results.json``, ``sweep.html``). Configurations run on ``workers`` local processes, or on Ray with ``ray``
    (``auto``, ``local`` or an address; the ``ray`` extra)."""
    from neurodeploy.sweeps.run import sweep as run_sweep

    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    return run_sweep(config, out, workers, ray, progress)


def parity(source: Bundle | str | Path, inputs: np.ndarray, *, dt_s: float | None = None,
           backend: str = "lava", discretisation: str = "euler", fixes: tuple[str, ...] | list[str] = (),
           labels: np.ndarray | None = None) -> ParityResult:
    """Layer by layer: the float reference against ``backend``'s float and fixed runs of a ``.nir``/``.net``
    file (fixed point for Loihi 2, precision ``auto``) or of a bundle's spiking part (for the profile and with
    the quantizer options it was compiled with), naming the first population that diverges; with options
    beyond 8-bit weights, also the plain 8-bit fixed run (the disagreement before and after). ``inputs``: one
    sample (T, *input_shape) or a batch (B, T, *input_shape); with ``labels`` (B,), each stage's accuracy (of a
    hybrid bundle: the whole model's, its dense part run on each stage's spikes at the cut)."""
    from neurodeploy.analysis.parity import compare_layers
    from neurodeploy.bundle import Bundle
    from neurodeploy.runtime.inputs import from_model_layout

    profile, reading, quantizer = "loihi2", {"discretisation": discretisation, "fixes": tuple(fixes)}, None
    bundle = dense = None
    if isinstance(source, Bundle) or Path(source).is_dir():
        bundle = _bundle(source)
        bundle.require_spiking("parity (population by population against the float reference)")
        m = bundle.manifest.spiking
        source, dt_s, profile, reading, quantizer = bundle.spiking_path, m.dt_s, m.profile, m.reading, m.quantizer
        inputs = from_model_layout(inputs, bundle.manifest)
        if labels is not None and not bundle.manifest.spiking_only:
            from neurodeploy.runtime.cosim_setup import dense_as_deployed

            dense = dense_as_deployed(bundle)  # accuracy per stage: the whole model's, as deployed
    result = compare_layers(Path(source), inputs, dt_s, backend, profile, reading, quantizer, labels, dense)
    return result.named(bundle.manifest.spiking.module_paths) if bundle is not None else result


def zoo_models() -> dict[str, str]:
    """The bundled models by name, with their one-line descriptions."""
    from neurodeploy.models import zoo

    return {name: entry.description for name, entry in zoo.ZOO.items()}
