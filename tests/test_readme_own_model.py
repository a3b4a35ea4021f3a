"""The README's "Bring your own model" commands, run as written from a fresh folder: a factory in a package of
the current directory (the console script, not ``python -m``, which would put the folder on the path by
itself), trained weights given with ``--weights``; ``cosim`` compares with the model (agreement in its JSON)
and ``evaluate`` prints PyTorch's accuracy beside the deployed one."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
MODELS = '''
import torch
from torch import nn


class Mine(nn.Module):
    def __init__(self):
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1 = nn.Linear(8, 16), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(16, 3), snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1, mem2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
        for t in range(x.shape[1]):
            spk1, mem1 = self.lif1(self.fc1(x[:, t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out, 1).sum(1)


def make():
    torch.manual_seed(0)
    x = (torch.rand(4, 12, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    return Mine().eval(), x, 1e-3
'''


def readme_commands() -> list[str]:
    """The ``neurodeploy ...`` lines of the first code block after "From the folder that holds your package"."""
    text = README.read_text()
    section = text[text.index("## Bring your own model"):]
    block = re.search(r"From the folder that holds your package.*?```\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip().startswith("neurodeploy ")]


def _weights(folder: Path) -> None:
    """``my_weights.pt``: a state_dict unlike make()'s own initialisation (as training would leave it)."""
    sys.path.insert(0, str(folder))
    try:
        from my_pkg.models import make

        model, _, _ = make()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        torch.save(model.state_dict(), folder / "my_weights.pt")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
            del sys.modules[name]


def test_the_readme_own_model_commands_run_as_written(tmp_path):
    pytest.importorskip("snntorch")
    script = Path(sys.executable).with_name("neurodeploy")
    assert script.is_file(), "the console script is installed beside the interpreter"
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_pkg" / "models.py").write_text(MODELS)
    _weights(tmp_path)
    rng = np.random.default_rng(5)
    np.save(tmp_path / "X.npy", (rng.random((3, 12, 8)) < 0.4).astype(np.float32))
    np.savez(tmp_path / "test.npz", x=(rng.random((16, 12, 8)) < 0.4).astype(np.float32),
             labels=rng.integers(0, 3, 16))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["compile", "cosim", "evaluate"]
    outputs = []
    for command in commands:
        done = subprocess.run([str(script), *shlex.split(command)[1:]], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        outputs.append(done.stdout)
    figures = json.loads(outputs[1])
    assert figures["agreement"]["spike_mismatches"] == 0 and figures["agreement"]["max_abs_err"] < 1e-4
    assert "PyTorch accuracy" in outputs[2] and "deployed accuracy" in outputs[2]
