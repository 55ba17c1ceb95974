"""DOTA's own format: its class lists, its label-file parser (pure: text in, arrays and messages out) and the
layouts a DOTA source comes in. Everything else of the large-image pipeline serves any Ultralytics dataset too."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TilingError
from .files import IMAGE_SUFFIXES, list_files

# Category tokens as they appear in DOTA label files, in the class order of Ultralytics' DOTAv1.yaml / DOTAv1.5.yaml
# (so Ultralytics' pretrained DOTA weights fine-tune on our tiles without remapping); v2.0 appends its two classes.
DOTA_CATEGORIES: dict[str, tuple[str, ...]] = {
    "1.0": (
        "plane", "ship", "storage-tank", "baseball-diamond", "tennis-court", "basketball-court",
        "ground-track-field", "harbor", "bridge", "large-vehicle", "small-vehicle", "helicopter", "roundabout",
        "soccer-ball-field", "swimming-pool",
    ),
}  # fmt: skip
DOTA_CATEGORIES["1.5"] = (*DOTA_CATEGORIES["1.0"], "container-crane")
DOTA_CATEGORIES["2.0"] = (*DOTA_CATEGORIES["1.5"], "airport", "helipad")
DEFAULT_VERSION = "1.5"  # the FSS paper's DOTA version

# A DOTA object line: 8 corner coordinates, the category and (optional in some DOTA-v1.0 files) the difficult flag.
_MIN_TOKENS, _MAX_TOKENS = 9, 10
_COORDS = 8  # x1 y1 ... x4 y4


def dataset_names(categories: tuple[str, ...], builtin: bool) -> list[str]:
    """Class names for data.yaml: Ultralytics spells the built-in DOTA classes with spaces ("storage tank").

    Args:
        categories (tuple[str, ...]): Category tokens in class order.
        builtin (bool): Whether they are a built-in DOTA list (custom lists are kept verbatim).

    Returns:
        (list[str]): Names in class order.
    """
    return [c.replace("-", " ") for c in categories] if builtin else list(categories)


@dataclass
class ParsedLabels:
    """Objects of one DOTA label file.

    Attributes:
        points (np.ndarray): Corners, shape (N, 4, 2), float64 pixels.
        cls (np.ndarray): Class indices, shape (N,), int64 (-1 where the category is unknown).
        difficult (np.ndarray): Difficult flags, shape (N,), bool.
        categories (list[str]): Category token of each object.
        lines (np.ndarray): 1-based line number of each object, shape (N,), int64.
        problems (list[str]): One message per malformed line, naming file and line.
    """

    points: np.ndarray
    cls: np.ndarray
    difficult: np.ndarray
    categories: list[str]
    lines: np.ndarray
    problems: list[str] = field(default_factory=list)


def _leading_numbers(tokens: list[str]) -> int:
    """How many tokens at the start of a line read as numbers (the coordinates, in a well-formed line 8)."""
    for i, t in enumerate(tokens):
        try:
            float(t)
        except ValueError:
            return i
    return len(tokens)


def parse_label_text(text: str, source: str | Path, classes: dict[str, int] | None = None) -> ParsedLabels:
    """Parse the text of a DOTA label file.

    Lines are ``x1 y1 x2 y2 x3 y3 x4 y4 category [difficult]``; ``key:value`` header lines (``imagesource:``,
    ``gsd:``) before the first object and blank lines are skipped. A malformed line is skipped and reported.

    Args:
        text (str): File contents.
        source (str | Path): File name used in messages.
        classes (dict[str, int] | None): Category token to class index; unknown tokens get -1. None: all -1.

    Returns:
        (ParsedLabels): The objects and the problems found.
    """
    coords, cats, diff, lines, problems = [], [], [], [], []
    seen_object = False
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 1 and ":" in tokens[0] and not seen_object:
            continue  # header line such as "imagesource:GoogleEarth" or "gsd:0.13"
        where = f"{source}:{n}"
        numbers = _leading_numbers(tokens)
        if 0 < numbers < len(tokens) <= numbers + 2 and numbers != _COORDS:  # numbers, category, flag?: miscounted
            problems.append(
                f"{where}: {numbers} coordinates before the category {tokens[numbers]!r}, expected "
                f"{_COORDS} (x1 y1 x2 y2 x3 y3 x4 y4), in {line.strip()!r}"
            )
            continue
        if not _MIN_TOKENS <= len(tokens) <= _MAX_TOKENS:
            problems.append(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 category difficult', got {line.strip()!r}")
            continue
        if numbers < _COORDS:
            problems.append(
                f"{where}: non-numeric coordinate {tokens[numbers]!r} (value {numbers + 1} of "
                f"{_COORDS}) in {line.strip()!r}"
            )
            continue
        xy = [float(t) for t in tokens[:_COORDS]]
        if not np.isfinite(xy).all():
            problems.append(f"{where}: non-finite coordinate in {line.strip()!r}")
            continue
        flag = tokens[9] if len(tokens) == _MAX_TOKENS else "0"
        if flag not in {"0", "1", "2"}:  # DOTA uses 0/1; 2 appears in some third-party DOTA-format sets
            problems.append(f"{where}: difficult flag must be 0 or 1, got {flag!r}")
            continue
        seen_object = True
        coords.append(xy)
        cats.append(tokens[8])
        diff.append(flag != "0")
        lines.append(n)
    classes = classes or {}
    return ParsedLabels(
        points=np.array(coords, dtype=np.float64).reshape(-1, 4, 2),
        cls=np.array([classes.get(c, -1) for c in cats], dtype=np.int64),
        difficult=np.array(diff, dtype=bool),
        categories=cats,
        lines=np.array(lines, dtype=np.int64),
        problems=problems,
    )


def read_label_file(path: Path, classes: dict[str, int] | None = None) -> ParsedLabels:
    """Read and parse one DOTA label file (UTF-8; undecodable bytes are replaced and the line reported as malformed).

    Args:
        path (Path): Label file.
        classes (dict[str, int] | None): Category token to class index.

    Returns:
        (ParsedLabels): The objects and the problems found.
    """
    return parse_label_text(path.read_text(encoding="utf-8", errors="replace"), path, classes)


def read_categories(path: Path) -> set[str]:
    """Collect the category tokens of a label file without building arrays (for ``--names auto``).

    Args:
        path (Path): Label file.

    Returns:
        (set[str]): Category tokens of its well-formed object lines.
    """
    return set(read_label_file(path).categories)


def load_names_file(path: Path) -> tuple[str, ...]:
    """Read a class list: a data.yaml-style ``names:`` mapping/list, or a text file with one category per line.

    Args:
        path (Path): ``.yaml``/``.yml`` or text file.

    Returns:
        (tuple[str, ...]): Category tokens in class order.

    Raises:
        ValueError: If the file holds no names or repeats one.
    """
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml  # a dependency of Ultralytics; only needed here

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names = data.get("names", data) if isinstance(data, dict) else data
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names or [])
    else:
        names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    names = tuple(str(n) for n in names)
    if not names:
        raise ValueError(f"{path}: no class names found")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: repeated class names {sorted({n for n in names if names.count(n) > 1})}")
    return names


# ---------------------------------------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class SplitSource:
    """Where one split of the source lives.

    Attributes:
        name (str): Split name (train, val, test...).
        images (Path): Image folder.
        labels (Path | None): DOTA label folder, None when the split has none (DOTA test).
    """

    name: str
    images: Path
    labels: Path | None


LAYOUTS = {
    "official": "SRC/{split}/images + SRC/{split}/labelTxt",
    "ultralytics": "SRC/images/{split} + SRC/labels/{split}_original",
    "flat": "SRC/images + SRC/labelTxt (one split, named 'train')",
}


def _has_images(folder: Path) -> bool:
    """Whether ``folder`` exists and holds at least one image file."""
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _dir_or_none(path: Path) -> Path | None:
    """``path`` when it is a folder, else None (a split without labels)."""
    return path if path.is_dir() else None


def detect_layout(src: Path) -> tuple[str, dict[str, SplitSource]]:
    """Recognise the DOTA layout of ``src`` (see LAYOUTS) and return its splits.

    Args:
        src (Path): Source root.

    Returns:
        layout (str): Key of LAYOUTS.
        splits (dict[str, SplitSource]): Splits found, by name.

    Raises:
        TilingError: If ``src`` is missing, empty, or matches several layouts; the message lists the layouts tried.
    """
    tried = "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items())
    if not src.is_dir():
        raise TilingError(f"source {src} is not a folder (layouts tried: {tried})")
    found: dict[str, dict[str, SplitSource]] = {}
    official = {
        d.name: SplitSource(d.name, d / "images", _dir_or_none(d / "labelTxt"))
        for d in sorted(src.iterdir())
        if (d / "images").is_dir() and ((d / "labelTxt").is_dir() or _has_images(d / "images"))
    }
    if official:
        found["official"] = official
    labels_root = src / "labels"
    if (src / "images").is_dir() and labels_root.is_dir() and any(labels_root.glob("*_original")):
        found["ultralytics"] = {
            d.name: SplitSource(d.name, d, _dir_or_none(labels_root / f"{d.name}_original"))
            for d in sorted((src / "images").iterdir())
            if d.is_dir()
        }
    if (
        (src / "labelTxt").is_dir()
        and (src / "images").is_dir()
        and not any(p.is_dir() for p in (src / "images").iterdir())
    ):
        found["flat"] = {"train": SplitSource("train", src / "images", src / "labelTxt")}
    if not found:
        raise TilingError(f"no DOTA layout found in {src} (layouts tried: {tried})")
    if len(found) > 1:
        raise TilingError(
            f"ambiguous source {src}: it matches the {' and '.join(found)} layouts (layouts tried: {tried})"
        )
    layout, splits = next(iter(found.items()))
    if not any(
        list_files(s.images, IMAGE_SUFFIXES) or (s.labels and list_files(s.labels, (".txt",))) for s in splits.values()
    ):
        raise TilingError(f"source {src} ({layout} layout: {LAYOUTS[layout]}) holds no images and no label files")
    return layout, splits
