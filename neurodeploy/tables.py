"""Results as tables: HTML for Jupyter (``_repr_html_``) and a pandas DataFrame (``to_dataframe()``); and the
process's console on stderr (:func:`stderr_console`), where progress is drawn.

Each result type (``Bundle``, ``CosimResult``, ``CostReport``, ``Evaluation``, ``SweepResult``) says what its
rows are; this module only renders them: the HTML escaped, its values already formatted by
:mod:`neurodeploy.units` (units, 3 significant digits), the DataFrame with full-precision numbers and unit
suffixes in the column names (``energy_j``). pandas is optional: ``pip install 'neurodeploy[dataframe]'``.
"""
from __future__ import annotations

import functools
import html
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from neurodeploy.errors import DependencyError

_BOUND: list = []  # consoles bound to the stderr a command started with (innermost last)


def stderr_console():
    """The process's rich console on stderr: during a CLI command the one bound to the terminal it started on
    (:func:`bound_console`; its status line and every progress bar draw on it, and what a library prints to a
    redirected ``sys.stderr`` meanwhile does not swallow them), else one that follows ``sys.stderr``."""
    return _BOUND[-1] if _BOUND else _following_console()


@functools.cache
def _following_console():
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def bound_console() -> Iterator[object]:
    """A console on the current ``sys.stderr`` stream itself, what :func:`stderr_console` returns until the end."""
    from rich.console import Console

    console = Console(file=sys.stderr)
    _BOUND.append(console)
    try:
        yield console
    finally:
        _BOUND.remove(console)


def html_table(caption: str | None, columns: list[str], rows: list[list]) -> str:
    """A self-contained ``<table>``: ``caption`` above (if any), one ``<tr>`` per row, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    above = "" if caption is None else f"<caption>{html.escape(caption)}</caption>"
    return f"<table>{above}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_frame(records: list[dict]):
    """``records`` (one dict per row) as a ``pandas.DataFrame``; a named error without pandas."""
    try:
        import pandas as pd
    except ImportError:
        raise DependencyError("to_dataframe() needs pandas, an optional extra: "
                              "pip install 'neurodeploy[dataframe]'") from None
    return pd.DataFrame.from_records(records)
