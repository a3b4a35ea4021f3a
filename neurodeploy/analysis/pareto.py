"""The Pareto front of a sweep: configurations no other one beats on both quality and cost.

Row ``a`` dominates row ``b`` when ``a[quality] >= b[quality]`` and ``a[cost] <= b[cost]`` with at
least one strict; the front is every row that no row dominates (rows missing either figure are left
out), sorted by cost. Equal rows are all on the front.
"""
from __future__ import annotations


def dominates(a: dict, b: dict, quality: str, cost: str) -> bool:
    return (a[quality] >= b[quality] and a[cost] <= b[cost]) and (a[quality] > b[quality] or a[cost] < b[cost])


def chip_rows(rows: list[dict]) -> list[dict]:
    """The rows that describe what the chip runs: the fixed-point ones where the table has any (a float row
    is the model before quantization, worth showing beside the front but not a deployment on it)."""
    fixed = [r for r in rows if r.get("mode") == "fixed"]
    return fixed or list(rows)


def pareto_front(rows: list[dict], quality: str = "accuracy", cost: str = "energy_j") -> list[dict]:
    """The non-dominated rows among :func:`chip_rows`, by increasing ``cost``."""
    valid = [r for r in chip_rows(rows) if r.get(quality) is not None and r.get(cost) is not None]
    front = [r for r in valid if not any(dominates(o, r, quality, cost) for o in valid if o is not r)]
    return sorted(front, key=lambda r: (r[cost], -r[quality]))
