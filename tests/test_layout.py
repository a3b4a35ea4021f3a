"""The stages depend one way (DESIGN.md's order), every module lives in a named stage, no private name
crosses a module boundary, every stage's door says what enters and leaves, and every path or dotted name a
docstring cites exists.

An ``ast`` walk over every import of the package (module level and inside functions, ``TYPE_CHECKING``
blocks included): an import may go to the same stage or one below it, never up.
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    ("errors", "choices", "_version", "profiles", "units", "tables", "hw_profiles"),
    ("models", "bundle", "parallel"),
    ("spiking",),
    ("exporters",),
    ("runtime",),
    ("compiler",),
    ("cost",),
    ("analysis", "qat"),
    ("report",),
    ("sweeps",),
    ("api",),
    ("cli", "__main__"),
]
ORDER = {name: level for level, names in enumerate(STAGES) for name in names}
ROOT_LEVEL = ORDER["api"]  # ``import neurodeploy`` is the public API
PACKAGES = {"neurodeploy": ROOT / "neurodeploy", "neurodeploy.exporters": ROOT / "exporters",
            "neurodeploy.hw_profiles": ROOT / "hw_profiles"}


def _modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name (exporters/ and hw_profiles/ install inside it)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if package == "neurodeploy" and path.is_relative_to(ROOT / "neurodeploy" / "exporters"):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return "api" if len(parts) == 1 else parts[1]


def _imports(module: str, path: Path):
    """(line, imported module, names or None) for every neurodeploy import in ``path``, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            yield node.lineno, base, [alias.name for alias in node.names]


def test_every_module_is_in_a_named_stage():
    unknown = sorted(m for m in MODULES if _stage(m) not in ORDER)
    assert not unknown, f"modules outside the stages of DESIGN.md: {unknown}"


def test_imports_go_to_the_same_stage_or_below():
    up = []
    for module, path in MODULES.items():
        mine = ORDER[_stage(module)]
        for line, target, _ in _imports(module, path):
            if target.split(".")[0] != "neurodeploy":
                continue
            theirs = ROOT_LEVEL if target == "neurodeploy" else ORDER.get(_stage(target))
            if theirs is None or theirs > mine:
                up.append(f"{path.relative_to(ROOT)}:{line} ({_stage(module)}) imports {target} ({_stage(target)})")
    assert not up, "imports that run up the stage order:\n" + "\n".join(up)


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in MODULES.items():
        for line, target, names in _imports(module, path):
            if target.startswith("neurodeploy") and target != module:
                private = [n for n in names or [] if n.startswith("_") and not n.startswith("__")]
                crossing += [f"{path.relative_to(ROOT)}:{line} imports {target}.{n}" for n in private]
    assert not crossing, "\n".join(crossing)


def test_the_test_sees_an_upward_import(tmp_path):
    """The walk is not blind: a runtime module importing the compiler is one it reports."""
    fake = tmp_path / "cosim.py"
    fake.write_text("def f():\n    from neurodeploy.compiler.partition import cuts\n")
    targets = [(t, ORDER[_stage(t)]) for _, t, _ in _imports("neurodeploy.runtime.cosim", fake)]
    assert targets == [("neurodeploy.compiler.partition", ORDER["compiler"])] and ORDER["compiler"] > ORDER["runtime"]


@pytest.mark.parametrize("stage", sorted({m.split(".")[1] for m in MODULES if m.count(".") >= 2}))
def test_every_stage_package_says_what_enters_and_leaves(stage):
    init = ROOT / "exporters" / "__init__.py" if stage == "exporters" else \
        ROOT / "hw_profiles" / "__init__.py" if stage == "hw_profiles" else ROOT / "neurodeploy" / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "Enters" in doc and "Leaves" in doc, f"{init.relative_to(ROOT)}: its docstring must say what enters and leaves"


DOTTED = re.compile(r"(?<![\w/])(neurodeploy(?:\.\w+)+)")
PATHS = re.compile(r"(?<![\w/.])((?:neurodeploy|exporters|hw_profiles|tests|benchmarks|scripts)/[\w/]+\.(?:py|json|md))")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_cited_name_and_path_exists():
    missing = []
    for module, path in MODULES.items():
        text = path.read_text()
        missing += [f"{path.relative_to(ROOT)}: {d}" for d in sorted(set(DOTTED.findall(text))) if not _resolves(d)]
        missing += [f"{path.relative_to(ROOT)}: {p}" for p in sorted(set(PATHS.findall(text))) if not (ROOT / p).exists()]
    assert not missing, "docstrings cite what does not exist:\n" + "\n".join(missing)
