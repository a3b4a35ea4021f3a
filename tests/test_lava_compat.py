"""The Python 3.11 fix for lava-nc 0.10.0 (neurodeploy.runtime.lava_compat)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from neurodeploy.runtime.lava_compat import TARGET_MODULE, patch_source


def _var_model_source() -> str:
    spec = importlib.util.find_spec(TARGET_MODULE)
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


def test_patch_rewrites_every_bytencoder_default():
    source = _var_model_source()
    assert source.count("= ByteEncoder()") == 8
    patched, count = patch_source(source)
    assert count == 8
    assert "= ByteEncoder()" not in patched
    assert patched.count("_nd_field(default_factory=ByteEncoder)") == 8
    assert patched.index("from __future__") < patched.index("_nd_field")  # __future__ stays first
    compile(patched, "var_model.py", "exec")


def test_patch_is_a_no_op_on_fixed_source():
    patched, _ = patch_source(_var_model_source())
    again, count = patch_source(patched)
    assert count == 0 and again == patched


def test_unpatched_import_fails_and_patched_import_works_in_fresh_interpreters():
    plain = subprocess.run([sys.executable, "-c", "import lava.proc.lif.process"], capture_output=True, text=True)
    assert plain.returncode != 0 and "ByteEncoder" in plain.stderr  # the bug the fix exists for
    fixed = subprocess.run([sys.executable, "-m", "neurodeploy.runtime.lava_compat", "--check"], capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert "ByteEncoder defaults rewritten: 8" in fixed.stdout
