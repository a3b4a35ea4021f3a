"""Make lava-nc 0.10.0 importable on Python 3.11.

lava-nc 0.10.0 (the last release; Lava is archived upstream) uses dataclass instances as field
defaults in ``lava/magma/compiler/var_model.py``::

    x: ByteEncoder = ByteEncoder()

Python 3.11 rejects unhashable defaults, so ``import lava.proc.lif.process`` fails with
``ValueError: mutable default <class 'ByteEncoder'> for field x is not allowed``.
The whole fix is to give each such field a factory::

    x: ByteEncoder = field(default_factory=ByteEncoder)

:func:`install` adds an import hook that applies exactly that rewrite to the module's source when it
is loaded (nothing in site-packages is edited). Lava starts its workers with ``fork``
(``lava/magma/runtime/message_infrastructure/multiprocessing.py`` sets the start method), so every
process Lava starts inherits the patched module from the process that installed the hook.

Run ``python -m neurodeploy.runtime.lava_compat --check`` to see whether the fix is needed and works.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from types import CodeType

from neurodeploy.errors import LavaCompatError

TARGET_MODULE = "lava.magma.compiler.var_model"
_DEFAULT_RE = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", re.MULTILINE)
_FIELD_IMPORT = "\nfrom dataclasses import field as _nd_field  # added by neurodeploy.runtime.lava_compat\n"


def patch_source(source: str) -> tuple[str, int]:
    """Return ``source`` with every ``= ByteEncoder()`` field default replaced by a factory.

    Returns the new source and the number of defaults replaced.
    """
    patched, count = _DEFAULT_RE.subn(r"\1_nd_field(default_factory=ByteEncoder)", source)
    if count:
        # after the ``from __future__`` line, which must stay first
        head, sep, tail = patched.partition("from __future__ import annotations\n")
        patched = head + sep + _FIELD_IMPORT + tail if sep else _FIELD_IMPORT + patched
    return patched, count


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Compiles the target module from patched source; bypasses the (unpatched) bytecode cache."""

    replaced = 0

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path).decode("utf-8")
        patched, _PatchingLoader.replaced = patch_source(source)
        return compile(patched, path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def needs_fix() -> bool:
    """True on Python >= 3.11, where dataclasses reject unhashable instance defaults."""
    return sys.version_info >= (3, 11)


def install() -> None:
    """Install the import hook (idempotent). Call before the first ``import lava``."""
    if not needs_fix() or any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        return
    if TARGET_MODULE in sys.modules:
        return  # already imported successfully (e.g. an already fixed Lava)
    sys.meta_path.insert(0, _VarModelFinder())


_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _free_start_method() -> None:
    """Lava sets the multiprocessing start method to ``fork`` when it is imported, and fails ("context has
    already been set") if anything chose one before, even ``fork`` itself (``multiprocessing
    .get_start_method()`` chooses the default as a side effect; some libraries call it). Undo a ``fork``
    choice so Lava can make it again; any other method is refused by name."""
    import multiprocessing

    if _LAVA_MP in sys.modules:
        return
    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:
        return
    if method != "fork":
        raise LavaCompatError(f"the multiprocessing start method is already {method!r}; Lava's runtime needs "
                              "'fork' (set it with multiprocessing.set_start_method('fork') before any other, or "
                              "use backend='emulator')")
    multiprocessing.context._default_context._actual_context = None  # Lava sets 'fork' again on import


def import_lava_core() -> None:
    """Install the hook and import Lava's core, raising :class:`LavaCompatError` with a way out."""
    install()
    _free_start_method()
    try:
        importlib.import_module("lava.magma.core.run_configs")
        importlib.import_module("lava.proc.lif.process")
    except ValueError as exc:  # the dataclass error, if the pattern changed
        raise LavaCompatError(
            f"lava-nc could not be imported on Python {sys.version.split()[0]}: {exc}. "
            "neurodeploy's fix rewrites '= ByteEncoder()' defaults in "
            f"{TARGET_MODULE}; this Lava version has a different source. "
            "Install lava-nc==0.10.0 with the Makefile (make venv)."
        ) from exc
    except ModuleNotFoundError as exc:
        raise LavaCompatError(
            f"lava-nc is not installed ({exc}): pip install --no-deps --ignore-requires-python lava-nc==0.10.0 "
            "(its dependencies come with neurodeploy), or use backend='emulator' (--backend emulator), which "
            "needs no Lava"
        ) from exc


def _main(argv: list[str]) -> int:
    import_lava_core()
    print(f"lava importable on Python {sys.version.split()[0]}; "
          f"fix needed: {needs_fix()}; ByteEncoder defaults rewritten: {_PatchingLoader.replaced}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
