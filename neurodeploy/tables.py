"""Results as tables: HTML for Jupyter (``_repr_html_``) and a pandas DataFrame (``to_dataframe()``).

Each result type (``Bundle``, ``CosimResult``, ``CostReport``, ``Evaluation``, ``SweepResult``) says what its
rows are; this module only renders them: the HTML escaped, its values already formatted by
:mod:`neurodeploy.units` (units, 3 significant digits), the DataFrame with full-precision numbers and unit
suffixes in the column names (``energy_j``). pandas is optional: ``pip install 'neurodeploy[dataframe]'``.
"""
from __future__ import annotations

import html

from neurodeploy.errors import DependencyError


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
