"""The tiler's output state in DST, with one owner: :class:`TileOutput` knows every path the tiler writes there.

Layout of DST::

    images/{split}, labels/{split}      tiles and labels of the first label format (detect, or obb)
    obb/images/{split}, obb/labels/...  format ``both`` only: the obb dataset (images hard-linked)
    data.yaml                           one per dataset root (DST, and DST/obb for ``both``)
    manifest.csv                        one row per tile of every finished image
    .tile_dota/options.json             the options DST was made with; a restart must match them
    .tile_dota/source.json              where each split's images and DOTA labels are, or the YOLO dataset YAML
                                        (merge_dota and merge_tiles score against them)
    .tile_dota/done/{split}/{stem}.json one record per finished image (restart and shard state)

Imported by worker processes: no Ultralytics import.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import TilingError
from ..files import remove_stale_tmp, write_atomic
from .config import FORMATS, TileConfig, label_formats
from .records import ImageResult

STATE_DIR = ".tile_dota"  # DST/.tile_dota: options and restart records
OPTIONS = "options.json"
SOURCE = "source.json"
DONE = "done"
MANIFEST = "manifest.csv"
DATA_YAML = "data.yaml"
# Dataset roots under DST besides DST itself, whatever --format made it: one folder per further label format (DST/obb).
SUBROOTS = tuple(f for fmt in FORMATS for f in label_formats(fmt)[1:])
MANIFEST_FIELDS = (
    "split", "tile", "image", "rate", "left", "top", "left_orig", "top_orig", "crop", "width", "height", "objects",
    "truncated",
)  # fmt: skip


@dataclass(frozen=True)
class TileOutput:
    """The output root DST and everything the tiler keeps in it (picklable: worker processes get a copy).

    Attributes:
        dst (Path): Output root, absolute.
        formats (tuple[str, ...]): Label formats written, as :meth:`TileConfig.formats` gives them; the first at DST,
            each further one under ``DST/{format}``.

    Examples:
        >>> out = TileOutput(Path("/data/tiles"), ("detect", "obb"))
        >>> [p.as_posix() for p in out.roots], out.record_path("train", "P0706").as_posix()
        (['/data/tiles', '/data/tiles/obb'], '/data/tiles/.tile_dota/done/train/P0706.json')
    """

    dst: Path
    formats: tuple[str, ...] = ("detect",)

    # ------------------------------------------------------------------------------------------------------ paths
    @property
    def roots(self) -> tuple[Path, ...]:
        """Dataset root of each label format, in the order of ``formats``."""
        return (self.dst, *(self.dst / f for f in self.formats[1:]))

    @property
    def state(self) -> Path:
        """The state folder ``DST/.tile_dota``."""
        return self.dst / STATE_DIR

    @staticmethod
    def images_dir(root: Path, split: str) -> Path:
        """Tile folder of one split under a dataset root."""
        return root / "images" / split

    @staticmethod
    def labels_dir(root: Path, split: str) -> Path:
        """Label folder of one split under a dataset root."""
        return root / "labels" / split

    @staticmethod
    def dst_of(path: Path) -> tuple[Path, str | None]:
        """The output root DST that ``path`` names: ``path`` itself, or DST when ``path`` is a further dataset root of
        DST (``DST/obb`` of format ``both``, same tiles, DST's one manifest).

        Returns:
            dst (Path): The output root.
            format (str | None): The label format of ``path`` when it is a further dataset root, else None.
        """
        for fmt in SUBROOTS:
            if path.name == fmt and not (path / MANIFEST).is_file() and (path.parent / MANIFEST).is_file():
                return path.parent, fmt
        return path, None

    @property
    def manifest_path(self) -> Path:
        """The manifest ``DST/manifest.csv``: one row per tile of every finished image."""
        return self.dst / MANIFEST

    @property
    def options_path(self) -> Path:
        """The options file ``DST/.tile_dota/options.json``: the options DST was made with."""
        return self.state / OPTIONS

    def record_path(self, split: str, stem: str) -> Path:
        """Path of the record that marks an image as finished."""
        return self.state / DONE / split / f"{stem}.json"

    # ---------------------------------------------------------------------------------------------------- records
    def read_record(self, split: str, stem: str) -> ImageResult | None:
        """The record of a finished image, None when it is not finished."""
        text = _read_text(self.record_path(split, stem))
        return None if text is None else ImageResult.from_json(text)

    def write_record(self, result: ImageResult, token: str) -> None:
        """Mark an image as finished: written last, atomically, after all its tiles and labels."""
        path = self.record_path(result.split, result.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, result.to_json(), token)

    def done_splits(self) -> list[str]:
        """Splits with at least one finished image, from any run into DST, sorted."""
        done = self.state / DONE
        return sorted(d.name for d in done.iterdir()) if done.is_dir() else []

    def read_records(self) -> list[dict]:
        """Load every finished-image record (any shard, any order).

        Returns:
            (list[dict]): Records sorted by (split, image); unreadable ones (impossible with atomic writes) are skipped.
        """
        records = []
        for p in sorted((self.state / DONE).glob("*/*.json")):
            try:
                records.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(records, key=lambda r: (r["split"], r["stem"]))

    # ------------------------------------------------------------------------------------------------------ source
    def write_source(
        self, src: Path, splits: dict[str, tuple[Path, Path | None]], token: str, data: Path | None = None
    ) -> None:
        """Record where each split's images and DOTA label files are, added to what earlier runs recorded.

        ``merge_dota`` finds the ground truth of a split through this record (the manifest's image paths are relative
        to SRC); ``merge_tiles`` through the YOLO dataset YAML (``data``).

        Args:
            src (Path): Source root, absolute.
            splits (dict[str, tuple[Path, Path | None]]): Split name to (image folder, label folder or None).
            token (str): Run token for the temporary file.
            data (Path | None): The YOLO dataset YAML a YOLO source was resolved from, absolute; None for DOTA.
        """
        old = self.read_source() or {}
        entry = {n: {"images": str(i), "labels": None if lb is None else str(lb)} for n, (i, lb) in splits.items()}
        data = {
            "src": str(src),
            "splits": {**old.get("splits", {}), **entry},
            **({"data": str(data)} if data is not None else {}),
        }
        self.state.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state / SOURCE, json.dumps(data, indent=1), token)

    def read_source(self) -> dict | None:
        """The source record ``{"src": str, "splits": {name: {"images": str, "labels": str | None}}}`` (and
        ``"data": str``, the dataset YAML, for YOLO sources), or None."""
        text = _read_text(self.state / SOURCE)
        return None if text is None else json.loads(text)

    def source_labels(self, split: str) -> str | None:
        """The DOTA label folder recorded for ``split``; None when the split has none or nothing was recorded."""
        return ((self.read_source() or {}).get("splits", {}).get(split) or {}).get("labels")

    # ----------------------------------------------------------------------------------------------- options, manifest
    def read_options(self) -> dict | None:
        """The options DST was made with, as :meth:`check_or_reset` recorded them (``TileConfig`` fields, tuples as
        lists); None before the first run."""
        text = _read_text(self.options_path)
        return None if text is None else json.loads(text)

    def read_manifest(self) -> list[dict[str, str]]:
        """The rows of ``DST/manifest.csv`` (see MANIFEST_FIELDS), values as text, in file order."""
        with open(self.manifest_path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    # ------------------------------------------------------------------------------------------------------ state
    def check_or_reset(self, cfg: TileConfig, *, overwrite: bool, sharded: bool, token: str) -> None:
        """Compare ``cfg`` with the options of an earlier run into DST, or record them for later runs.

        Args:
            cfg (TileConfig): This run's options.
            overwrite (bool): Delete the tiler's earlier output in DST first.
            sharded (bool): Whether this is one shard of several (then ``overwrite`` is refused: it would clear the
                other shards' work).
            token (str): Run token for temporary names.

        Raises:
            TilingError: If DST was made with other options, or ``overwrite`` is asked of a shard.
        """
        if overwrite:
            if sharded:
                raise TilingError(
                    "--overwrite clears DST for every shard: run it once without --shard, or clear DST yourself"
                )
            self._reset()
        options = json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as they come back from the file
        old = self.read_options()
        if old is not None:
            if old != options:
                diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in options.items() if old.get(k) != v)
                raise TilingError(
                    f"{self.dst} holds tiles made with other options ({diff}); use --overwrite or another DST"
                )
            return
        self.state.mkdir(parents=True, exist_ok=True)
        write_atomic(self.options_path, json.dumps(options, indent=1), token)

    def _reset(self) -> None:
        """Delete everything the tiler writes in DST, whatever formats made it (SUBROOTS: ``DST/obb`` of ``both``)."""
        for name in ("images", "labels", *SUBROOTS, MANIFEST, DATA_YAML, STATE_DIR):
            p = self.dst / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    def make_dirs(self, split: str, has_labels: bool) -> None:
        """Create the tile (and label) folders of one split under every dataset root."""
        for root in self.roots:
            self.images_dir(root, split).mkdir(parents=True, exist_ok=True)
            if has_labels:
                self.labels_dir(root, split).mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------------------------------------------- temporaries
    def _tmp_folders(self, splits: list[str]) -> list[Path]:
        """Folders where tiles, labels and records of ``splits`` get their temporary names."""
        folders = [d(r, s) for r in self.roots for d in (self.images_dir, self.labels_dir) for s in splits]
        return folders + [self.state / DONE / s for s in splits]

    def remove_stale_tmp(self, splits: list[str], stems: set[str]) -> int:
        """Delete temporaries that a killed run left for these images only (concurrent shards keep theirs).

        Args:
            splits (list[str]): Splits of this run.
            stems (set[str]): Stems of this run's (this shard's) images.

        Returns:
            (int): Number of files removed.
        """
        return remove_stale_tmp(self._tmp_folders(splits), stems=stems)

    def remove_run_tmp(self, splits: list[str], token: str) -> int:
        """Delete this run's temporaries, wherever it was stopped (tiles, labels, records, options, manifest).

        Args:
            splits (list[str]): Splits of this run.
            token (str): This run's token.

        Returns:
            (int): Number of files removed.
        """
        return remove_stale_tmp([*self._tmp_folders(splits), self.state, self.dst], token=token)

    # ------------------------------------------------------------------------------------------ manifest, data.yaml
    def write_manifest(self, token: str) -> int:
        """Rebuild ``DST/manifest.csv`` from all finished-image records, safe against shards finishing concurrently.

        Each writer re-reads the records after its rename and rewrites while they changed, so the last rename always
        reflects every record written before it: shards may finish in any order.

        Args:
            token (str): Run token for the temporary file.

        Returns:
            (int): Number of images in the manifest.
        """
        text = None
        while True:
            records = self.read_records()
            new = manifest_text(records)
            if new == text:
                return len(records)
            write_atomic(self.manifest_path, new, token)
            text = new

    def write_data_yaml(self, splits: list[str], names: list[str], token: str) -> list[str]:
        """Write ``data.yaml`` in every dataset root, listing ``splits`` and every split tiled into DST before.

        Args:
            splits (list[str]): Splits of this run, in order.
            names (list[str]): Class names in index order.
            token (str): Run token for the temporary files.

        Returns:
            (list[str]): The splits listed (those of this run first); without ``val``, val points at the train tiles.
        """
        tiled = splits + [s for s in self.done_splits() if s not in splits]  # also runs with other --splits
        for root in self.roots:
            write_atomic(root / DATA_YAML, data_yaml_text(root, tiled, names), token)
        return tiled


def _read_text(path: Path) -> str | None:
    """The text of a state file, None when it does not exist (yet)."""
    return path.read_text(encoding="utf-8") if path.is_file() else None


def manifest_text(records: list[dict]) -> str:
    """Render the manifest: one CSV row per tile (see MANIFEST_FIELDS), sorted by split, image, then tile order.

    Args:
        records (list[dict]): Finished-image records, as :meth:`TileOutput.read_records` gives them.

    Returns:
        (str): CSV text with a header row.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        for t in r["tiles"]:
            writer.writerow({"split": r["split"], "image": r["image"], **t})
    return buf.getvalue()


def yaml_splits(splits: list[str]) -> tuple[str, str]:
    """The splits data.yaml names as ``train`` and ``val``: ``train`` (else the first), ``val`` (else the train one,
    since Ultralytics requires a val key).

    Examples:
        >>> yaml_splits(["train", "val", "test"]), yaml_splits(["train"]), yaml_splits(["test"])
        (('train', 'val'), ('train', 'train'), ('test', 'test'))
    """
    train = "train" if "train" in splits else splits[0]
    return train, "val" if "val" in splits else train


def data_yaml_text(dataset: Path, splits: list[str], names: list[str]) -> str:
    """Render an Ultralytics data.yaml; a missing val split points at train (see :func:`yaml_splits`), with a comment.

    Args:
        dataset (Path): Dataset root (absolute), written as ``path:``.
        splits (list[str]): Splits tiled.
        names (list[str]): Class names in index order.

    Returns:
        (str): YAML text.
    """
    lines = [
        "# Ultralytics dataset written by python -m ultralytics_fss.tile_dota",
        f"path: {json.dumps(str(dataset))}",
    ]
    train, val = yaml_splits(splits)
    lines.append(f"train: images/{train}")
    if val == train:
        lines.append(f"# no val split was tiled: validation runs on the {train} tiles (optimistic metrics)")
    lines.append(f"val: images/{val}")
    if "test" in splits:
        lines.append("test: images/test")
    lines += ["", "names:"] + [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"
