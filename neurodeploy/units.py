"""Figures as a person reads them: SI prefixes and units, 3 significant digits, layers by the user's names."""
from __future__ import annotations

import math

_PREFIXES = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M"),
             (1e9, "G"), (1e12, "T")]


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``9.913e-05, "J"`` -> ``"99.1 µJ"``; ``None`` -> ``"n/a"``. ``digits`` significant digits."""
    if value is None:
        return "n/a"
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    scale, prefix = si_prefix(value)
    return f"{_significant(value / scale, digits)} {prefix}{unit}"


def si_prefix(value: float) -> tuple[float, str]:
    """The SI prefix that puts ``value`` between 1 and 1000: ``9.9e-05`` -> ``(1e-06, "µ")``; ``(1.0, "")`` for 0."""
    value = abs(float(value))
    if value == 0 or not math.isfinite(value):
        return 1.0, ""
    return next(((s, p) for s, p in reversed(_PREFIXES) if value >= s), _PREFIXES[0])


def _significant(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits and no exponent (``99.1``, ``1.07``, ``105``)."""
    if value == 0:
        return "0"
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0)
    return f"{value:.{decimals}f}"


def number(value: float | int | None, digits: int = 3) -> str:
    """A count or a ratio: ``105538`` -> ``"105,538"``, ``0.0123`` -> ``"0.0123"``, ``None`` -> ``"n/a"``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if abs(value) >= 1000 or (float(value).is_integer() and abs(value) >= 1):
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.3g} %"


def display_name(name: str, module_paths: dict[str, str]) -> str:
    """A population or synapse of the plan under the user's module names.

    ``module_paths`` maps NIR nodes to ``"frontend.1 (Leaky)"``. A synapse composed of several nodes
    (``"4+5"``) lists each; a bias line (``"1.bias"``) is named after its population. Names without an
    entry (graphs read from a file, whose nodes carry the file's own names) are returned as they are.
    """
    if not module_paths:
        return name
    if name.endswith(".bias") and name[: -len(".bias")] in module_paths:
        return f"bias of {module_paths[name[: -len('.bias')]]}"
    parts = name.split("+")
    if all(p in module_paths for p in parts):
        return " + ".join(module_paths[p] for p in parts)
    return module_paths.get(name, name)


FIGURE_UNITS = (("_j_per_bit", "J/bit"), ("_j", "J"), ("_s", "s"), ("_w", "W"), ("_flops", "FLOP/s"))
"""The unit a profile figure's name ends in (``energy.hop_j``, ``compute.peak_flops``); others print as numbers."""


def figure_value(figure: str, value) -> str:
    """A hardware figure as a person reads it: ``("compute.peak_flops", 9.89e14)`` -> ``"989 TFLOP/s"``,
    ``("energy.hop_j", 3.6e-12)`` -> ``"3.6 pJ"``; a number without a unit in its name as :func:`number`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    unit = next((u for suffix, u in FIGURE_UNITS if figure.endswith(suffix)), None)
    return si(value, unit) if unit is not None else number(value)


def listing(mapping: dict) -> str:
    """``{"loihi": "loihi2", "gpu": "h100"}`` -> ``"loihi loihi2, gpu h100"``: a dict as a person reads it."""
    return ", ".join(f"{key} {value}" for key, value in mapping.items())
