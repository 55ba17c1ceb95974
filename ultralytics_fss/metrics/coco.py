"""COCO's twelve box metrics with pycocotools, from ground truth and results in COCO's JSON form.

Used by `evidence.coco` (a YOLO dataset's split, a model's or a file's predictions) and by
`large_images.merge_back.merge_tiles` (full images merged back from tiles).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_metrics(gt: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, float]:
    """Score `predictions` against `gt` with pycocotools' `COCOeval` (bbox); return the twelve `stats` by name
    (`COCO_KEYS`, -1 where pycocotools gives -1: no ground truth in that area range)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def coco(dataset: dict) -> COCO:
        c = COCO()
        c.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            c.createIndex()
        return c

    images = [{k: v for k, v in im.items() if k != "key"} for im in gt["images"]]
    truth = coco(dict(images=images, annotations=gt["annotations"], categories=gt["categories"]))
    dets = [
        dict(
            id=i,
            image_id=p["image_id"],
            category_id=p["category_id"],
            bbox=p["bbox"],
            score=p["score"],
            area=p["bbox"][2] * p["bbox"][3],
            iscrowd=0,
        )
        for i, p in enumerate(predictions, start=1)
    ]
    found = coco(dict(images=images, annotations=dets, categories=gt["categories"]))
    evaluator = COCOeval(truth, found, "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(COCO_KEYS, (float(v) for v in np.asarray(evaluator.stats))))


def format_metrics(metrics: dict[str, float]) -> str:
    """The twelve numbers as a two-row Markdown table."""
    return "\n".join(
        [
            "| " + " | ".join(COCO_KEYS) + " |",
            "|" + "---:|" * len(COCO_KEYS),
            "| " + " | ".join(f"{metrics[k]:.3f}" for k in COCO_KEYS) + " |",
        ]
    )
