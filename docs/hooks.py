"""MkDocs hooks (`hooks:` in mkdocs.yml): the pages' generated parts, made from the code and the repository's own
files at build time so that they cannot drift.

- `<!-- fss-keys... -->`: the table of every `fss_*` key, from `ultralytics_fss.train.cfg` (`FSS_KEYS`: default and
  valid values, the ones the trainer checks; `FSS_HELP`: what each does).
- `<!-- include: FILE -->`: the text of FILE at the repository root (ARCHITECTURE.md, CHANGELOG.md), its first
  heading dropped (the page has its own).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"^<!-- include: (?P<file>[\w.-]+) -->$", re.MULTILINE)
KEYS = re.compile(r"^<!-- fss-keys[^>]*-->$", re.MULTILINE)


def keys_table() -> str:
    """Markdown: key, default, valid values, what it does; one row per `fss_*` key, in the trainer's order."""
    # this checkout's file, whatever copy of the package is installed (cfg.py imports the standard library only)
    spec = importlib.util.spec_from_file_location("_fss_cfg", ROOT / "ultralytics_fss" / "train" / "cfg.py")
    cfg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cfg)
    FSS_HELP, FSS_KEYS = cfg.FSS_HELP, cfg.FSS_KEYS

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| key | default | valid values | what it does |", "|---|---|---|---|"]
    for key, (default, _, _, valid) in FSS_KEYS.items():
        shown = f"`{default}`" if isinstance(default, str) else f"{default}"
        lines.append(f"| `{key}` | {shown} | {cell(valid)} | {cell(FSS_HELP[key])} |")
    return "\n".join(lines)


def include(match: re.Match) -> str:
    text = (ROOT / match["file"]).read_text()
    return re.sub(r"\A# .*\n+", "", text)  # the page has its own title


def on_page_markdown(markdown: str, **kwargs) -> str:
    """Fill the generated parts of a page."""
    markdown = KEYS.sub(lambda _: keys_table(), markdown)
    return INCLUDE.sub(include, markdown)
