"""One call, one flat dict: the deployed model's accuracy, agreement, operations, static metrics, and energy
and latency per sample by device, beside the all-GPU baseline (as NeuroBench's ``Benchmark.run`` returns its
results; ``nd.benchmark`` / ``neurodeploy benchmark``).

Keys named as NeuroBench 2.3.0 names its metrics are computed as NeuroBench computes them, on the user's
PyTorch model (the tests compare with NeuroBench's own classes on the same model):

- ``Footprint``: bytes of every parameter and buffer, ``sum(numel * element_size)``;
- ``ParameterCount``: ``sum(numel)`` of the parameters;
- ``ConnectionSparsity``: zero weights / weights over the leaf ``Linear``/``Conv1d``/``Conv2d``/``Conv3d``
  (``weight``), ``RNNBase`` (every layer's ``weight_ih``/``weight_hh``, their biases where present,
  ``weight_hr`` where projected, reverse directions too) and ``RNNCellBase`` modules (``weight_ih``,
  ``weight_hh``, biases), rounded to 4 decimals; other leaves count nothing;
- ``ClassificationAccuracy``: the fraction of samples whose argmax equals the label, here of the deployed
  model.

The operation counts come from the cost report (:mod:`neurodeploy.cost.pricing`): NeuroBench's synaptic
operations of the layers on Loihi (``sops_loihi_*``) and of the dense part's Linear and Conv calls
(``sops_gpu_*``), NeuroBench's activation sparsity and membrane updates over Loihi's populations.
:data:`FIELDS` documents every key (its unit and meaning).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

FIELDS: dict[str, str] = {
    "model": "the bundle's model name",
    "samples": "labelled samples evaluated",
    "backend": "what ran the spiking part (emulator or lava)",
    "mode": "float, or fixed (Loihi's integers)",
    "schedule": "when the dense part ran (end, window, event)",
    "ClassificationAccuracy": "deployed model: fraction of samples whose argmax equals the label (NeuroBench's)",
    "accuracy_pytorch": "the PyTorch model's on the same samples (None without a model)",
    "same_class_as_pytorch": "fraction of samples where deployed and PyTorch predict the same class",
    "max_abs_err": "largest |deployed - PyTorch| of the output over the priced samples (None without a model)",
    "spike_mismatches": "spikes unlike the PyTorch model's over the priced samples (None without a model)",
    "Footprint": "bytes of the PyTorch model's parameters and buffers (NeuroBench's; None without a model)",
    "ParameterCount": "parameters of the PyTorch model (NeuroBench's; None without a model)",
    "ConnectionSparsity": "zero weights / weights of the PyTorch model (NeuroBench's; None without a model)",
    "ActivationSparsity": "zero outputs / outputs over Loihi's populations, steps and samples (NeuroBench's)",
    "MembraneUpdates": "membrane updates per sample on Loihi's populations (NeuroBench's)",
    "sops_loihi_effective": "synaptic operations per sample on Loihi, nonzero inputs only (NeuroBench's count)",
    "sops_loihi_dense": "synaptic operations per sample on Loihi, every input (NeuroBench's Dense)",
    "sops_gpu_effective_acs": "dense part per sample: NeuroBench Effective_ACs (Linear/Conv calls fed spikes)",
    "sops_gpu_effective_macs": "dense part per sample: NeuroBench Effective_MACs (other Linear/Conv calls)",
    "sops_gpu_dense": "dense part per sample: NeuroBench Dense",
    "macs_gpu": "MACs per sample of the dense part, every ONNX operator (the GPU's work)",
    "loihi_cores": "Loihi cores the spiking part is mapped onto",
    "loihi_chips": "Loihi chips those cores take",
    "energy_j": "energy per sample, Loihi + link + GPU (J)",
    "energy_loihi_j": "energy per sample on Loihi (J)",
    "energy_link_j": "energy per sample on the link, Loihi to GPU (J)",
    "energy_gpu_j": "energy per sample on the GPU (J)",
    "latency_s": "latency per sample, Loihi + link + GPU (s)",
    "energy_gpu_only_j": "energy per sample of the same model wholly on the GPU, the baseline (J)",
    "latency_gpu_only_s": "latency per sample of the same model wholly on the GPU (s)",
    "loihi_profile": "the neuromorphic profile priced",
    "gpu_profile": "the GPU profile priced",
}


def footprint(model: nn.Module) -> int:
    """NeuroBench's ``Footprint``: bytes of every parameter and buffer."""
    return int(sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]))


def parameter_count(model: nn.Module) -> int:
    """NeuroBench's ``ParameterCount``."""
    return int(sum(p.numel() for p in model.parameters()))


def connection_sparsity(model: nn.Module) -> float | None:
    """NeuroBench's ``ConnectionSparsity`` (see the module docstring); None where no layer has weights."""
    zeros = total = 0
    for module in model.modules():
        if list(module.children()):
            continue
        for weight in _connection_weights(module):
            zeros += int((weight == 0).sum())
            total += weight.numel()
    return round(zeros / total, 4) if total else None


def _connection_weights(module: nn.Module) -> list:
    """The tensors NeuroBench's ConnectionSparsity counts in a leaf module."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return [module.weight]
    if isinstance(module, nn.RNNBase):
        names = ["weight_ih_l{}{}", "weight_hh_l{}{}"] + (["bias_ih_l{}{}", "bias_hh_l{}{}"] if module.bias else []) + \
            (["weight_hr_l{}{}"] if module.proj_size > 0 else [])
        suffixes = ["", "_reverse"] if module.bidirectional else [""]
        return [getattr(module, n.format(i, s)) for i in range(module.num_layers) for s in suffixes for n in names]
    if isinstance(module, nn.RNNCellBase):
        return [getattr(module, n) for n in ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])]
    return []


def static_metrics(model: nn.Module | None) -> dict[str, Any]:
    """Footprint, ParameterCount and ConnectionSparsity of the PyTorch model (None each without one)."""
    if model is None:
        return {"Footprint": None, "ParameterCount": None, "ConnectionSparsity": None}
    return {"Footprint": footprint(model), "ParameterCount": parameter_count(model),
            "ConnectionSparsity": connection_sparsity(model)}


def benchmark_dict(evaluation, figures: dict, torch_model: nn.Module | None, resources: dict | None) -> dict[str, Any]:
    """The flat dict of :data:`FIELDS` from an :class:`~neurodeploy.analysis.evaluate.Evaluation`, the priced
    run's figures (``CostReport.figures``), the PyTorch model and the core map (``Resources.as_dict()``)."""
    e, lat, agree = figures["energy_j"], figures["latency_s"], figures.get("agreement") or {}
    sops, gpu, resources = figures.get("sops") or {}, figures.get("gpu_sops") or {}, resources or {}
    flat = {
        "model": figures["model"], "samples": evaluation.samples, "backend": evaluation.backend,
        "mode": evaluation.mode, "schedule": evaluation.schedule,
        "ClassificationAccuracy": evaluation.accuracy, "accuracy_pytorch": evaluation.torch_accuracy,
        "same_class_as_pytorch": evaluation.agreement, "max_abs_err": agree.get("max_abs_err"),
        "spike_mismatches": agree.get("spike_mismatches"), **static_metrics(torch_model),
        "ActivationSparsity": (figures.get("activation_sparsity") or {}).get("value"),
        "MembraneUpdates": (figures.get("membrane_updates") or {}).get("value"),
        "sops_loihi_effective": sops.get("effective"), "sops_loihi_dense": sops.get("dense"),
        "sops_gpu_effective_acs": gpu.get("effective_acs"), "sops_gpu_effective_macs": gpu.get("effective_macs"),
        "sops_gpu_dense": gpu.get("dense"), "macs_gpu": figures["macs"]["total"],
        "loihi_cores": resources.get("cores"), "loihi_chips": resources.get("chips"),
        "energy_j": e["total"], "energy_loihi_j": e.get("neuromorphic"), "energy_link_j": e.get("transfer"),
        "energy_gpu_j": e.get("gpu"), "latency_s": lat["total"],
        "energy_gpu_only_j": figures["baseline_gpu_only"]["energy_j"],
        "latency_gpu_only_s": figures["baseline_gpu_only"]["latency_s"],
        "loihi_profile": figures["profiles"].get("loihi"), "gpu_profile": figures["profiles"].get("gpu"),
    }
    assert list(flat) == list(FIELDS), "benchmark keys and FIELDS differ"
    return {k: _plain(v) for k, v in flat.items()}


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers (the dict goes to JSON)."""
    return value.item() if isinstance(value, np.generic) else value
