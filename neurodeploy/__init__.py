"""neurodeploy: deploy hybrid spiking + dense PyTorch models onto Loihi 2 (NIR -> Lava) and a GPU (ONNX).

The flow (as in hls4ml), one call per stage::

    import neurodeploy as nd
    bundle = nd.compile(model, "out/b", inputs=x)          # an nn.Module, a .nir/.net file or a zoo name
    result = nd.cosimulate(bundle, x_new, mode="fixed", backend="emulator")
    cost = nd.estimate(bundle, result, loihi="loihi2", gpu="h100")
    nd.write_report(bundle, result, cost, "report.html")
    nd.evaluate(bundle, x_test, labels)
    nd.sweep("sweep.toml", "out/sweep", ray="auto")        # a grid of choices -> table + Pareto front

Stages, one subpackage each: ``models`` (what users build and train, and the zoo), ``compiler``
(partition and the compile pipeline), ``spiking`` (the backend-neutral plan, Loihi numerics,
quantizer, resource map, float reference), ``runtime`` (Lava, the emulator, ONNX Runtime, the
co-simulation), ``cost`` (profiles, counts, energy and latency), ``report`` (JSON, terminal, HTML),
``analysis`` (parity, evaluate, quantization), ``sweeps`` (design-space sweeps),
``scale`` (process pool and Ray), ``qat`` (fine-tuning on the chip's integer grid:
``neurodeploy.qat.FixedPointNetwork``); file formats in ``neurodeploy.exporters``; errors in
``neurodeploy.errors``, all under :class:`NeurodeployError`.
"""
from neurodeploy.api import compile, cosimulate, estimate, evaluate, load, parity, sweep, write_report, zoo_models
from neurodeploy._version import __version__
from neurodeploy.errors import NeurodeployError

__all__ = ["compile", "cosimulate", "estimate", "evaluate", "load", "parity", "sweep", "write_report", "zoo_models",
           "NeurodeployError", "__version__"]
