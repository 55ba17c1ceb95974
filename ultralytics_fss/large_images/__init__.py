"""Large-image pipeline: DOTA aerial images or any Ultralytics YOLO dataset in, an Ultralytics YOLO dataset of tiles
out, and the way back to full images.

Public API (``python -m ultralytics_fss.tile_dota`` and ``python -m ultralytics_fss.tile`` are its command lines)::

    from ultralytics_fss.large_images import tile_dota, tile_yolo, TileSummary, TilingError, TilingInterrupted
    from ultralytics_fss.large_images import merge_dota, merge_tiles, MergeResult, MergeError, predict_tiled

``python -m ultralytics_fss.merge_dota`` (DOTA sources), ``python -m ultralytics_fss.merge_tiles`` (YOLO sources) and
``python -m ultralytics_fss.predict_tiled`` are the command lines of the merge-back and of tiled prediction. The
DOTA-specific pieces (label parser, official names, Task files) are :mod:`.dota` and :mod:`.merge_back.merge_dota`;
YOLO sources enter through :mod:`.yolo_labels` and :mod:`.tiling.yolo_source`, every later stage is shared.

Two halves, each a subpackage, and the pieces they share at this level:

- :mod:`.tiling`: the tiler, source images and DOTA labels in, an Ultralytics dataset out.
- :mod:`.merge_back`: the way back, tile predictions to full images, DOTA's Task files and metric, tiled prediction.
  It reads what the tiler wrote (:mod:`.tiling.output`, :mod:`.tiling.config`); the tiler never imports it.

Stages of the tiler, run by :func:`tile_dota` (:mod:`.tiling.pipeline`):

- :mod:`.tiling.prepare`: source layout, splits, class names, this shard's jobs (nothing written).
- :mod:`.tiling.output`: :class:`~.tiling.output.TileOutput`, the one owner of the output state in DST (roots,
  ``.tile_dota`` state, restart records, options, temporaries, manifest, data.yaml).
- :mod:`.tiling.run`: worker count, inline or pool execution, Ctrl-C and SIGTERM.
- :mod:`.tiling.summary`: :class:`TileSummary`, :class:`TilingInterrupted`, the closing log.

Worker side (imported by pool workers, no Ultralytics import, so workers start fast):

- :mod:`.tiling.tile`: tiling one image (the unit of work, restart and sharding); :mod:`.tiling.records`: jobs,
  counters, records.
- :mod:`.tiling.config`: :class:`~.tiling.config.TileConfig`, the output options and their defaults.

Shared by both halves:

- :mod:`.geometry`: sliding windows, polygon repair, clipping, tile labels (numpy + shapely).
- :mod:`.dota`: DOTA class lists and the label-file parser.
- :mod:`.files`: source layouts, atomic writes; :mod:`.images`: decoding, rescaling, cropping, encoding.
- :mod:`.errors`: :class:`TilingError`, :class:`~.errors.ImageError`, :class:`MergeError`.

Merge-back (main process only):

- :mod:`.merge_back.merge_dota`: :func:`merge_dota`, tile predictions to DOTA's Task files, zip and metric.
- :mod:`.merge_back.merge_tiles`: :func:`merge_tiles`, tile predictions of a YOLO source to full-image txt files, COCO
  results and metrics (pycocotools), or DOTA's metric for oriented boxes.
- :mod:`.merge_back.tile_predictions`: the tiler's index of a split, prediction files, a model's run over the tiles.
- :mod:`.merge_back.nms`: tile to image coordinates, class-wise NMS (polygon or box IoU).
- :mod:`.merge_back.metric`: DOTA's VOC07 metric, as the devkit's ``dota_evaluation_task1/2.py``.
- :mod:`.merge_back.full_images`: a model trained on tiles scored on the full images (``compare`` on a tiler's
  output): the merge of ``merge_dota`` or ``merge_tiles``, DOTA's mAP50 and mAP50-95 or COCO's twelve numbers.
- :mod:`.merge_back.predict_tiled`: :func:`predict_tiled`, prediction on large images with the tiler's windows.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import MergeError, TilingError

if TYPE_CHECKING:
    from .merge_back.merge_dota import MergeResult, merge_dota
    from .merge_back.merge_tiles import MergeTilesResult, merge_tiles
    from .merge_back.predict_tiled import predict_tiled
    from .tiling.pipeline import tile_dota, tile_yolo
    from .tiling.summary import TileSummary, TilingInterrupted

__all__ = [
    "MergeError",
    "MergeResult",
    "MergeTilesResult",
    "TileSummary",
    "TilingError",
    "TilingInterrupted",
    "merge_dota",
    "merge_tiles",
    "predict_tiled",
    "tile_dota",
    "tile_yolo",
]

# Loaded on first use: pool workers import this package for ``.tiling.tile``, and the pipeline's Ultralytics import
# (torch with it, about a second) would otherwise slow every worker's start.
_LAZY = {
    "tile_dota": ".tiling.pipeline", "tile_yolo": ".tiling.pipeline", "TileSummary": ".tiling.summary",
    "TilingInterrupted": ".tiling.summary",
    "merge_dota": ".merge_back.merge_dota", "MergeResult": ".merge_back.merge_dota",
    "merge_tiles": ".merge_back.merge_tiles", "MergeTilesResult": ".merge_back.merge_tiles",
    "predict_tiled": ".merge_back.predict_tiled",
}  # fmt: skip


def __getattr__(name: str):
    """Import the main-process half of the public API when it is first asked for (PEP 562)."""
    if name in _LAZY:
        value = globals()[name] = getattr(importlib.import_module(_LAZY[name], __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the lazy names too."""
    return sorted({*globals(), *__all__})
