"""The Pareto front of a sweep: configurations no other one beats on both quality and cost.

Row ``a`` dominates row ``b`` when ``a[quality] >= b[quality]`` and ``a[cost] <= b[cost]`` with at
least one strict; the front is every row that no row dominates (rows missing either figure are left
out), sorted by cost. Equal rows are all on the front.
"""
from __future__ import annotations


def dominates(a: dict, b: dict, quality: str, cost: str) -> bool:
    return (a[quality] >= b[quality] and a[cost] <= b[cost]) and (a[quality] > b[quality] or a[cost] < b[cost])


def pareto_front(rows: list[dict], quality: str = "accuracy", cost: str = "energy_j") -> list[dict]:
    """The non-dominated rows, by increasing ``cost``."""
    valid = [r for r in rows if r.get(quality) is not None and r.get(cost) is not None]
    front = [r for r in valid if not any(dominates(o, r, quality, cost) for o in valid if o is not r)]
    return sorted(front, key=lambda r: (r[cost], -r[quality]))
