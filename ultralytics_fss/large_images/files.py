"""Files of the large-image pipeline: listings, atomic writes, the clean-up of temporary files, writable outputs.

Imported by worker processes: standard library only (numpy for type hints).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TMP_SUFFIX = ".tmp"  # temporary files are ".{final name}.{run token}.tmp": hidden from Ultralytics' image globs


def list_files(folder: Path | None, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files of ``folder`` with one of ``suffixes`` (case-insensitive), by stem, sorted by name.

    Args:
        folder (Path | None): Folder to list; None or missing gives an empty dict.
        suffixes (tuple[str, ...]): Accepted suffixes, lower case with dot.

    Returns:
        (dict[str, Path]): Stem to file; for a stem present with two suffixes, the first by name.
    """
    if folder is None or not folder.is_dir():
        return {}
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in suffixes and p.is_file() and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


# ------------------------------------------------------------------------------------------------------ atomic files
def unwritable(folder: str | Path) -> str | None:
    """Why a command could not write its output into ``folder`` (made when missing), or None when it can.

    Checked before any work and without leaving anything behind: the nearest existing folder on the way must be a
    folder, and an anonymous temporary file must open in it (so root, whom permissions do not stop, is refused only by
    what refuses root: a read-only or special filesystem).

    Examples:
        >>> unwritable("/etc/hostname/runs")
        '/etc/hostname is a file, not a folder'
    """
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:  # a path under a file does not "exist" either
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        return f"{existing} is not writable ({e.strerror or e})"
    return None


def tmp_path(path: Path, token: str) -> Path:
    """Temporary name for ``path``: hidden, tagged with the run token, in the same folder (so rename is atomic)."""
    return path.with_name(f".{path.name}.{token}{TMP_SUFFIX}")


def write_atomic(path: Path, data: bytes | np.ndarray | str, token: str) -> None:
    """Write a file under a temporary name, then rename it over ``path``; no partial file is ever visible.

    The temporary file is removed on any exception, KeyboardInterrupt included. A SIGKILL can still leave it behind;
    :func:`remove_stale_tmp` cleans those up on the next run.

    Args:
        path (Path): Final file.
        data (bytes | np.ndarray | str): Contents: bytes-like, or str written as UTF-8.
        token (str): Run token, part of the temporary name.
    """
    tmp = tmp_path(path, token)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_atomic(src: Path, path: Path, token: str) -> None:
    """Hard-link ``src`` to ``path`` atomically (copy where the file system has no hard links).

    Args:
        src (Path): Existing file.
        path (Path): New name.
        token (str): Run token, part of the temporary name.
    """
    tmp = tmp_path(path, token)
    try:
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            tmp.write_bytes(src.read_bytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_tmp(folders: list[Path], stems: set[str] | None = None, token: str | None = None) -> int:
    """Delete temporary files left in ``folders`` by an interrupted or killed run.

    Args:
        folders (list[Path]): Output folders to scan (not recursive).
        stems (set[str] | None): Only temporaries of tiles of these source images (``{stem}__...``), so concurrent
            shards never touch each other's files; None: any.
        token (str | None): Only temporaries of this run; None: any run.

    Returns:
        (int): Number of files removed.
    """
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for e in entries:
                name = e.name
                if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                    continue
                if token is not None and not name.endswith(f".{token}{TMP_SUFFIX}"):
                    continue
                if (
                    stems is not None
                    and name[1:].split("__", 1)[0] not in stems
                    and name[1:].rsplit(".", 3)[0] not in stems
                ):
                    continue
                Path(e.path).unlink(missing_ok=True)
                removed += 1
    return removed

