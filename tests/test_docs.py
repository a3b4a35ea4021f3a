"""The documentation: the tutorial notebook executes (a fresh kernel, in a scratch folder, under two minutes,
its own asserts on agreement and accuracy), and the site builds with ``mkdocs build --strict`` (every page in
the nav, every link between pages resolved) with the executed notebook in it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[nbformat.NotebookNode, float]:
    """The tutorial run top to bottom in a new kernel of this interpreter; its wall time in seconds."""
    work = tmp_path_factory.mktemp("tutorial")
    nb = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return nb, time.perf_counter() - start


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + "".join(str(v) for v in o.get("data", {}).values()))
    return "\n".join(out)


def test_tutorial_executes_under_two_minutes(executed):
    nb, wall_s = executed
    assert wall_s < 120, f"the tutorial took {wall_s:.0f} s"
    text = _text(nb)
    assert "Agreement(0 spike mismatches" in text
    assert "accuracy" in text and "PyTorch 100 %" in text
    assert "open out/tutorial_report.html" in text


def test_docs_build_strict(executed, tmp_path):
    """The site from a copy of docs/ holding the executed notebook (so its outputs render too)."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    nbformat.write(executed[0], docs / "tutorial.ipynb")
    config = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {docs}")
    (tmp_path / "mkdocs.yml").write_text(config)
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(tmp_path / "mkdocs.yml"),
                          "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner about its future
                         cwd=tmp_path)  # mkdocs-jupyter caches into .cache/ of the folder it runs in, not the checkout
    assert run.returncode == 0, run.stdout + run.stderr
    pages = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")}
    nav = {p.stem for p in DOCS.glob("*.md") if p.stem != "index"} | {"tutorial"}
    assert nav <= pages, nav - pages
    assert "Agreement(0 spike mismatches" in (tmp_path / "site" / "tutorial" / "index.html").read_text()


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    missing = [p.name for p in DOCS.iterdir() if p.suffix in (".md", ".ipynb") and p.name not in config]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"
