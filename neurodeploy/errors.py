"""Every error neurodeploy raises on purpose, under one root, :class:`NeurodeployError`.

Each message says what is wrong, where (the module of the user's model, the node of the file, the
field of the profile) and how to fix it. A message that lists several problems does so one per line
(``"what:\\n  - problem\\n  - problem"``); the CLI prints :func:`one_line` of it and exits 2. Anything
that is not a ``NeurodeployError`` escaping from neurodeploy is a bug.

The classes also derive from the built-in exception a caller would expect (``ValueError`` for bad
input, ``RuntimeError`` for a failed run, ``ImportError`` for a missing dependency), so existing
``except ValueError`` code keeps working. This module imports nothing heavy: the CLI loads it first.
"""
from __future__ import annotations


class NeurodeployError(Exception):
    """The root of every named neurodeploy error."""


def problem_list(what: str, problems: list[str] | str) -> str:
    """``what`` followed by one problem per line: the format every listing error uses."""
    items = [problems] if isinstance(problems, str) else list(problems)
    return f"{what}:\n  - " + "\n  - ".join(items)


def validation_problems(exc) -> list[str]:
    """``"field.path: message"`` for each problem of a pydantic ``ValidationError``."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def one_line(exc: BaseException | str) -> str:
    """The message of ``exc`` (an exception or its text) on one line (listed problems joined by ``;``), for the CLI."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], [line.removeprefix("- ") for line in lines[1:]]
    return head + (" " + "; ".join(rest) if rest else "")


def raised_at(exc: BaseException) -> str:
    """``"TypeName: first line (at file:line: code)"`` for an exception from user or library code, followed
    to its root cause: the innermost frame outside torch and neurodeploy, where a researcher can act on it."""
    import traceback
    from pathlib import Path

    root, seen = exc, {id(exc)}
    while (root.__cause__ or root.__context__) is not None and id(root.__cause__ or root.__context__) not in seen:
        root = root.__cause__ or root.__context__
        seen.add(id(root))
    ours = (str(Path(__file__).parent), str(Path(__file__).parents[1] / "exporters"))
    frames = [f for e in (exc, root) for f in traceback.extract_tb(e.__traceback__)
              if "/torch/" not in f.filename and not f.filename.startswith(ours)]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno}: {(frames[-1].line or '').strip()})" if frames else ""
    first = next((line.strip() for line in str(root).splitlines() if line.strip()), "")
    return f"{type(root).__name__}: {first[:300]}{where}"


class UsageError(NeurodeployError, ValueError):
    """An argument of an API call or of the CLI is missing, of the wrong kind, or contradicts another."""


class ModelConfigError(NeurodeployError, ValueError):
    """A neurodeploy building block (neuron, adapter, dense block, zoo entry) was built with invalid settings."""


class FactoryError(NeurodeployError, ValueError):
    """A ``module:function`` factory cannot be imported or returns something neurodeploy cannot compile,
    or a ``--weights`` file does not fit the model."""


class PartitionError(NeurodeployError, ValueError):
    """The model cannot be split; the message lists the modules that are in the way."""


class SpikingPlanError(NeurodeployError, ValueError):
    """The spiking graph cannot be expressed for Loihi; the message lists every offending node."""

    def __init__(self, problems: list[str] | str, what: str = "cannot map the graph to Loihi") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.what = what
        super().__init__(problem_list(what, self.problems))

    def renamed(self, names: dict[str, str]) -> "SpikingPlanError":
        """The same error with each problem's leading NIR node (``"3: ..."``) named as ``names`` says (the
        module of the user's model: ``"fc2 (Linear), NIR node 3: ..."``)."""
        def rename(problem: str) -> str:
            node, sep, rest = problem.partition(": ")
            return f"{names[node]}, NIR node {node}: {rest}" if sep and node in names else problem
        return type(self)([rename(p) for p in self.problems], self.what)


class ModelDoesNotFitError(SpikingPlanError):
    """The plan does not fit the chip(s) of the profile; the message lists each violated limit."""


class QuantizationError(SpikingPlanError):
    """A population cannot be represented in Loihi's integer ranges; the message lists each one."""


class NetxFormatError(SpikingPlanError):
    """The .net file is malformed or uses a construct neurodeploy cannot run; lists each problem."""


class OnnxExportError(NeurodeployError, RuntimeError):
    """The ONNX export is wrong (specialised dynamic dimension, or outputs differ from PyTorch)."""


class OnnxRunError(NeurodeployError, RuntimeError):
    """ONNX Runtime refused to run the dense part on the inputs it was given (shape, type)."""


class OnnxLoadError(NeurodeployError, ValueError):
    """An ONNX file cannot be loaded by ONNX Runtime (missing, truncated or malformed)."""


class BundleError(NeurodeployError, ValueError):
    """A bundle is missing, incomplete or malformed; the message says what and how to fix it."""


class InputShapeError(NeurodeployError, ValueError):
    """The input array does not have the shape or values the bundle or back-end expects."""


class ScheduleError(NeurodeployError, ValueError):
    """The bundle's dense part does not support the requested schedule."""


class EmulatorError(NeurodeployError, ValueError):
    """The plan cannot be emulated exactly (a sum could exceed what the arithmetic holds exactly)."""


class LavaCompatError(NeurodeployError, ImportError):
    """Lava is not installed, or cannot be made importable on this Python."""


class LavaRunError(NeurodeployError, RuntimeError):
    """A Lava run failed; Lava's processes have been stopped."""


class LavaStartError(LavaRunError):
    """Lava's workers did not all start within the time limit (twice, each time on a fresh network); the
    ones that did have been terminated."""


class ProfileError(NeurodeployError, ValueError):
    """A hardware profile is missing, unreadable or malformed; the message lists each problem."""


class DatasetError(NeurodeployError, ValueError):
    """The dataset file is missing, unreadable, or its arrays do not fit together."""


class DependencyError(NeurodeployError, ImportError):
    """An optional dependency the call needs is not installed (the message says which extra)."""


class DiskError(NeurodeployError, OSError):
    """A file or folder cannot be written or read (no space, read-only, permission); what was there before is
    left as it was."""


class UnsafeFileError(NeurodeployError, ValueError):
    """A bundle, ``.nir``/``.net`` file or output folder asks for something a data file may not: a path leaving
    it, a symlink, code to import, HDF5 storage outside the file, or sizes beyond the memory budget."""


class UnsafeGraphFileError(SpikingPlanError, UnsafeFileError):
    """A ``.nir`` or ``.net`` file that reads outside itself (HDF5 external storage, external links, virtual
    datasets) or declares more than the memory budget; both a spiking-graph error and an unsafe file."""
