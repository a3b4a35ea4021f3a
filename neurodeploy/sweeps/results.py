"""The sweep's result table, written as rows finish so that an interrupted sweep resumes.

Two files in the sweep folder, one row per configuration:

- ``results.jsonl``: one JSON object per line, appended and flushed (fsync) as each row arrives: the
  record a resumed sweep reads. A line cut short by a kill is ignored, and its configuration runs again.
- ``results.csv``: the same rows as a table (columns :data:`neurodeploy.sweeps.tasks.ROW_FIELDS`),
  appended likewise and rewritten from ``results.jsonl`` when a sweep resumes.

A row is keyed by its ``config_id``; a row already present is never written twice. A sweep holds the
folder's lock (an ``flock`` on the folder, which the kernel releases if the sweep dies) while it runs: a second
sweep into the same folder is refused instead of writing every row twice. The rewrite on resume goes to a
temporary file renamed into place (:func:`neurodeploy.bundle.atomic.write_file`): a full disk leaves the
old table, never an empty one.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path

from neurodeploy.bundle.atomic import disk_errors, write_file
from neurodeploy.errors import UsageError
from neurodeploy.sweeps.tasks import ROW_FIELDS

JSONL, CSV = "results.jsonl", "results.csv"


class ResultTable:
    """``with ResultTable(folder) as table: table.add(row)``; the folder is locked while the table is open."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        with disk_errors(self.folder, "create the sweep folder"):
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise UsageError(f"the sweep folder {self.folder} is in use by another sweep; wait for it to end, or "
                             "give this one another --out") from None
        try:
            self.rows = _read_rows(self.folder / JSONL)
            self._rewrite()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "ResultTable":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _rewrite(self) -> None:
        """Both files from the rows read (drops a torn last line), each replaced atomically."""
        write_file(self.folder / JSONL, "".join(json.dumps(r) + "\n" for r in self.rows.values()))
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, ROW_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows.values())
        write_file(self.folder / CSV, buf.getvalue())

    def add(self, row: dict) -> bool:
        """Append ``row`` to both files; False (nothing written) if its configuration is already there."""
        if row["config_id"] in self.rows:
            return False
        self.rows[row["config_id"]] = row
        for name, text in ((JSONL, json.dumps(row) + "\n"), (CSV, _csv_line(row))):
            with disk_errors(self.folder / name), open(self.folder / name, "a", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        return True


def _csv_line(row: dict) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, ROW_FIELDS, extrasaction="ignore").writerow(row)
    return buf.getvalue()


def _read_rows(path: Path) -> dict[str, dict]:
    """The whole rows of a table by ``config_id``, each once (a line cut short by a kill is skipped)."""
    rows: dict[str, dict] = {}
    for line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed run
        if isinstance(row, dict) and row.get("config_id") is not None:
            rows.setdefault(row["config_id"], row)
    return rows


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
