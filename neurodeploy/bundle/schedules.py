"""Which schedules and early exits a bundle can run: every schedule rule, in one place.

- ``end``: the dense part runs once per sample; every bundle has it.
- ``window``: once per window of K steps, the step model's state carried (a streaming back-end); a
  bundle with a feedback channel runs only this one, in float mode.
- ``event``: as ``window``, on salient windows only (a streaming back-end with a salience threshold).
- early exits: a streaming back-end built with an ``exit_threshold``.

A bundle cut before its last population (its later populations run on the GPU, placement reason
:data:`~neurodeploy.bundle.manifest.TAIL_REASON`) has only ``end`` and no early exits. A bundle's own
schedule (what ``schedule=None`` means everywhere) is the one recorded at compile, else ``window`` for a
feedback channel, else ``end``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from neurodeploy.choices import SCHEDULES
from neurodeploy.errors import ScheduleError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from neurodeploy.bundle.manifest import Manifest

WHY_NOT = {"window": "the window schedule needs a streaming back-end (neurodeploy.models.backends.StreamingBackend)",
           "event": "the event schedule needs a streaming back-end with a salience_threshold"}


def default_schedule(manifest: Manifest) -> str:
    """The bundle's own deployment schedule."""
    return manifest.schedule or ("window" if manifest.feedback is not None else "end")


def compiled_schedule(supported: list[str], feedback: bool, requested: str | None) -> str:
    """The schedule a bundle is compiled with: ``requested`` if its dense part supports it, else by default
    ``window`` for a streaming back-end (and always for a feedback channel), ``end`` otherwise."""
    if feedback:
        return "window"
    if requested is None:
        return "window" if "window" in supported else "end"
    if requested not in supported:
        raise UsageError(f"schedule {requested!r} is not supported by this dense part (supported: "
                         f"{supported}); the window and event schedules need a streaming back-end")
    return requested


def supported_schedules(manifest: Manifest) -> list[str]:
    return ["end"] if manifest.dense is None else list(manifest.dense.schedules)


def moved_to_gpu(manifest: Manifest) -> str | None:
    """Why a bundle cut before its last population, or run wholly on the GPU, has only the end schedule (None
    if neither)."""
    from neurodeploy.bundle.manifest import TAIL_REASON

    if manifest.gpu_only:
        return ("it runs wholly on the GPU (Loihi cannot start it), as the model's own code over its "
                f"{manifest.num_steps} steps: the end schedule only, no early exits")
    on_gpu = [p.module for p in manifest.placement if p.reason == TAIL_REASON]
    if not on_gpu:
        return None
    return (f"it was cut at {manifest.cut}, so {', '.join(on_gpu)} run on the GPU over the whole sequence (the end "
            "schedule only, no early exits); compile without --cut, or at the last population, for the others")


def check_schedule(manifest: Manifest, schedule: str, early_exit: bool = False, mode: str | None = None) -> None:
    """A ScheduleError where the bundle cannot run ``schedule`` (in ``mode``) or early exits."""
    m = manifest
    if early_exit and (m.dense is None or m.dense.exit_threshold is None):
        raise ScheduleError(f"bundle '{m.name}' has no early exits: " + (
            moved_to_gpu(m) or "compile a streaming back-end built with exit_threshold (e.g. the "
                                "liquidspikeformer zoo model)"))
    if schedule not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {schedule!r}; schedules: {list(SCHEDULES)}")
    supported = supported_schedules(m)
    if schedule not in supported:
        why = WHY_NOT.get(schedule, "")
        if m.dense is not None and m.dense.no_step_reason:
            why = f"no step model could be derived for the model's own code after the cut: {m.dense.no_step_reason}"
        elif schedule == "event" and m.dense is not None and m.dense.step_output == "last":
            why = "the event schedule needs a salience threshold: compile with event_threshold"
        if m.feedback is not None:
            why = "the bundle has a feedback channel, which needs the window schedule"
        raise ScheduleError(f"schedule {schedule!r} is not supported by bundle '{m.name}' "
                            f"(supported: {supported}): {moved_to_gpu(m) or why}")
    if m.feedback is not None and mode is not None and (schedule != "window" or mode != "float"):
        raise ScheduleError(f"bundle '{m.name}' has a feedback channel: it runs with --schedule window in float mode")


def with_thresholds(manifest: Manifest, schedule: str, early_exit: bool, exit_threshold: float | None = None,
                    event_threshold: float | None = None) -> Manifest:
    """``manifest`` with other early-exit and event thresholds (None: its own). A threshold that does not
    apply (no early exits, not the event schedule) is a ScheduleError."""
    update = {}
    if exit_threshold is not None:
        if not early_exit:
            raise ScheduleError("exit_threshold applies with early_exit = true")
        update["exit_threshold"] = float(exit_threshold)
    if event_threshold is not None:
        if schedule != "event":
            raise ScheduleError(f"event_threshold applies to the event schedule, not {schedule!r}")
        update["event_threshold"] = float(event_threshold)
    if not update:
        return manifest
    dense = manifest.dense
    if dense is None or ("exit_threshold" in update and dense.exit_threshold is None):
        raise ScheduleError(f"bundle '{manifest.name}' has no early exits to set a threshold for")
    return manifest.model_copy(update={"dense": dense.model_copy(update=update)})
