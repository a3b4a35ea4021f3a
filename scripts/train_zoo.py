"""Train a zoo model on its generated dataset and write its weights (reproducible: fixed seeds).

    .venv/bin/python scripts/train_zoo.py NAME [--mode MODE] [--adapter A] [--epochs N]

NAME is one of the trained zoo models (liquidspikeformer, neuro_svt, mamba_liquid_snn,
snn_filter_transformer). The weights go to ``neurodeploy/zoo/weights/NAME.pt`` (for
mamba_liquid_snn's other modes and adapters, ``NAME-MODE-ADAPTER.pt``). Spiking neurons train through
snnTorch's surrogate gradient, spike-driven attention through
:func:`neurodeploy.models.dense_blocks.surrogate_gradients`. Prints the validation accuracy per epoch and
the test accuracy at the end.
"""
from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

from neurodeploy.analysis.evaluate import torch_predictions
from neurodeploy.compiler.torch_reference import torch_output
from neurodeploy.models.dense_blocks import surrogate_gradients
from neurodeploy.models.zoo.common import WEIGHTS, calibrate

SEED = 0
EVAL_SIZE = 256


def accuracy(model, x: np.ndarray, labels: np.ndarray, event: bool) -> float:
    return float(np.mean(torch_predictions(model, x, event=event) == labels))


def train(name: str, mode: str | None, adapter: str | None, epochs: int | None) -> float:
    zoo = importlib.import_module(f"neurodeploy.models.zoo.{name}")
    cfg = dict(zoo.TRAINING)
    event = cfg.get("event", False)
    torch.manual_seed(SEED)
    kwargs = {k: v for k, v in (("mode", mode), ("adapter", adapter)) if v}
    model = zoo.architecture(**kwargs)
    x, labels = zoo.dataset("train", cfg["train_size"])
    calibrate(model.frontend, torch.as_tensor(x[:64]), cfg.get("target_rate", 0.08))  # all populations firing
    x_val, y_val = zoo.dataset("val", EVAL_SIZE)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    epochs = epochs or cfg["epochs"]
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    order_rng = np.random.default_rng(SEED)
    for epoch in range(epochs):
        model.train()
        t0, total = time.perf_counter(), 0.0
        for idx in np.array_split(order_rng.permutation(len(x)), len(x) // cfg["batch"]):
            with surrogate_gradients():
                y = torch_output(model, torch.as_tensor(x[idx]), event=event)
                loss = zoo.loss(y, torch.as_tensor(labels[idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        print(f"{name} epoch {epoch + 1}/{epochs}: loss {total / len(x):.3f}, val acc "
              f"{accuracy(model, x_val, y_val, event):.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    suffix = "" if not kwargs else "-" + "-".join(kwargs.values())
    WEIGHTS.mkdir(exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS / f"{name}{suffix}.pt")
    x_test, y_test = zoo.dataset("test", EVAL_SIZE)
    test = accuracy(model, x_test, y_test, event)
    print(f"{name}{suffix}: test accuracy {test:.3f} over {EVAL_SIZE} samples; weights {WEIGHTS / f'{name}{suffix}.pt'}")
    return test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--mode")
    parser.add_argument("--adapter")
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args()
    train(args.name, args.mode, args.adapter, args.epochs)


if __name__ == "__main__":
    main()
