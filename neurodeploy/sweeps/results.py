"""The sweep's result table, written as rows finish so that an interrupted sweep resumes.

Two files in the sweep folder, one row per configuration:

- ``results.jsonl``: one JSON object per line, appended and flushed (fsync) as each row arrives: the
  record a resumed sweep reads. A line cut short by a kill is ignored, and its configuration runs again.
- ``results.csv``: the same rows as a table (columns :data:`neurodeploy.sweeps.tasks.ROW_FIELDS`),
  appended likewise and rewritten from ``results.jsonl`` when a sweep resumes.

A row is keyed by its ``config_id``; a row already present is never written twice.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from neurodeploy.sweeps.tasks import ROW_FIELDS

JSONL, CSV = "results.jsonl", "results.csv"


class ResultTable:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict] = {}
        for line in _lines(self.folder / JSONL):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run
            self.rows.setdefault(row.get("config_id"), row)
        self.rows.pop(None, None)
        self._rewrite()

    def _rewrite(self) -> None:
        """Both files from the rows read (drops a torn last line)."""
        with open(self.folder / JSONL, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows.values())
        with open(self.folder / CSV, "w", newline="") as f:
            writer = csv.DictWriter(f, ROW_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows.values())

    def add(self, row: dict) -> bool:
        """Append ``row`` to both files; False (nothing written) if its configuration is already there."""
        if row["config_id"] in self.rows:
            return False
        self.rows[row["config_id"]] = row
        for name, text in ((JSONL, json.dumps(row) + "\n"), (CSV, _csv_line(row))):
            with open(self.folder / name, "a", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        return True


def _csv_line(row: dict) -> str:
    import io

    buf = io.StringIO()
    csv.DictWriter(buf, ROW_FIELDS, extrasaction="ignore").writerow(row)
    return buf.getvalue()


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
