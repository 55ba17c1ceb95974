"""The documentation site builds strictly (MkDocs, Material, mkdocstrings), its generated key table is the code's,
and the README is a landing page that links into it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ultralytics.utils import YAML

from ultralytics_fss.train.cfg import FSS_HELP, FSS_KEYS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    """The pages the site's nav lists, in order."""
    nav = YAML.load(ROOT / "mkdocs.yml")["nav"]
    return [next(iter(item.values())) for item in nav]


def test_the_site_builds_strictly_with_every_key_and_page(tmp_path):
    """`mkdocs build --strict`: a broken link or anchor, a docstring mkdocstrings cannot render, or a hook error
    fails. The keys page holds one row per `fss_*` key with the trainer's own default and range text."""
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    keys = (site / "keys" / "index.html").read_text()
    for key in FSS_KEYS:
        assert f"<code>{key}</code>" in keys, key
    assert "an integer &gt;= 1 (smallest dynamic k" in keys  # the range text of fss_min_k, from FSS_KEYS
    api = (site / "api" / "index.html").read_text()
    assert "FSSTrainer" in api and "Eq. (8)" in api  # docstrings rendered
    how = (site / "how-it-works" / "index.html").read_text()
    assert "What each folder may import" in how  # ARCHITECTURE.md included
    for page in nav_pages():
        assert (site / ("" if page == "index.md" else page[:-3]) / "index.html").is_file(), page


def test_every_key_has_its_help_and_every_page_is_in_the_nav():
    assert set(FSS_HELP) == set(FSS_KEYS)  # the docs table reads both
    pages = nav_pages()
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md")), "a page missing from mkdocs.yml's nav"
    for page in set(pages) - {"index.md", "changelog.md"}:  # each starts with the command that does its job
        head = (DOCS / page).read_text().split("\n")[:8]  # the title, at most one sentence, the command
        assert head[0].startswith("# ") and {"```bash", "```python"} & set(head), (page, head)


def test_the_readme_is_a_landing_page_that_links_every_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "pip install . && python -m ultralytics_fss.demo" in text
    assert 'pip install ".[dev]" && python -m pytest -q' in text
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", text))
    assert set(nav_pages()) - {"changelog.md"} <= linked
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install ".[dev]" && python -m pytest -q' in ci  # CI runs the README's test command
