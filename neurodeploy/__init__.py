"""neurodeploy: deploy hybrid spiking + dense PyTorch models onto Loihi 2 (NIR -> Lava) and a GPU (ONNX).

The flow (as in hls4ml), one call per stage::

    import neurodeploy as nd
    bundle = nd.compile(model, "out/b", inputs=x)          # an nn.Module, a .nir/.net file or a zoo name
    result = nd.cosimulate(bundle, x_new, mode="fixed", backend="emulator")
    cost = nd.estimate(bundle, result, loihi="loihi2", gpu="h100")
    nd.write_report(bundle, result, cost, "report.html")
    nd.evaluate(bundle, x_test, labels)
    nd.sweep("sweep.toml", "out/sweep", ray="auto")        # a grid of choices -> table + Pareto front

Stages, lowest first (an import goes only to the same stage or one below; ``tests/test_layout.py``):
``errors``, ``choices``, ``_version``, ``units``, ``profiles`` (hardware profiles) -> ``models`` (what users
build and train, the zoo), ``bundle`` (the unit between stages, its schedule rules), ``parallel`` (process
pool and Ray) -> ``spiking`` (the backend-neutral plan, NIR lowering, Loihi numerics, quantizer, resource
map, float simulation) -> ``exporters`` (file formats) -> ``runtime`` (Lava, the emulator, ONNX Runtime, the
co-simulation) -> ``compiler`` (the compile flow as named passes) -> ``cost`` (counts, energy, latency,
``CostReport``) -> ``analysis`` (agreement, parity, evaluate, Pareto fronts), ``qat`` (fine-tuning on the
chip's integer grid) -> ``report`` (rendering) -> ``sweeps`` -> ``api`` (this package's names) -> ``cli``.
Errors are all under :class:`NeurodeployError`.
"""
from neurodeploy.api import (benchmark, compile, cosimulate, estimate, evaluate, load, parity, sweep, write_report,
                             zoo_models)
from neurodeploy._version import __version__
from neurodeploy.errors import NeurodeployError

__all__ = ["benchmark", "compile", "cosimulate", "estimate", "evaluate", "load", "parity", "sweep", "write_report", "zoo_models",
           "NeurodeployError", "__version__"]
