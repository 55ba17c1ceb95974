"""The seam's piece that follows ultralytics/data/dataset.py: the batch Ultralytics' validation loader makes of one
image (`one_image_batch`), for replaying a training step on it.
"""

from __future__ import annotations

import numpy as np
import torch

from ultralytics_fss.train.seam.loss import obb_kept

SEGMENT_RESAMPLES = {"obb": 100, "segment": 1000}  # points per polygon, `YOLODataset.update_labels_info` (line 421)


def one_image_batch(
    task: str,
    image: np.ndarray,
    cls: np.ndarray,
    boxes: np.ndarray,
    polygons: list[np.ndarray] | None = None,
    keypoints: np.ndarray | None = None,
    mask_ratio: int = 4,
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The batch Ultralytics' validation loader makes of one letterboxed image, for the loss of `task`.

    Built with Ultralytics' own pieces, as `YOLODataset` chains them (ultralytics/data/dataset.py): `Instances` with the
    polygons resampled as `update_labels_info` does (lines 401-431), `Format` with the arguments of `build_transforms`
    (lines 327-358; oriented boxes become xywhr there, polygons masks), then `collate_fn` (lines 433-461). One change:
    `mask_overlap=False` (one mask per object, in label order: `overlap_mask=True` re-sorts the objects by area), so
    the loss's GT j is label row j; the assigners see the same boxes either way. The arrays handed in are never
    modified (`Format` normalises in place: it gets copies).

    Args:
        task (str): `detect`, `obb`, `segment` or `pose`.
        image (np.ndarray): (S, S, 3) uint8 BGR image, already letterboxed to the model's input.
        cls (np.ndarray): (n,) classes.
        boxes (np.ndarray): (n, 4) xywh pixels.
        polygons (list[np.ndarray], optional): n (k, 2) pixel polygons: the 4 corners of each rotated box (obb), or
            each object's outline (segment).
        keypoints (np.ndarray, optional): (n, K, 2 or 3) pixels (and visibility), pose.
        mask_ratio (int): Mask downsampling (Ultralytics' `mask_ratio`).

    Returns:
        batch (dict[str, torch.Tensor]): `img` (1, 3, S, S) uint8 RGB, `batch_idx` (n',), `cls` (n', 1), `bboxes`
            (n', 4) normalised xywh or (n', 5) xywhr, `masks` (n', S / mask_ratio, S / mask_ratio) for segment,
            `keypoints` (n', K, 3) normalised for pose (and what else `Format` adds): of the objects the loss keeps.
        rows (np.ndarray): (n',) int64 label row of each batch object (obb: without the tiny ones, `obb_kept`).
    """
    from ultralytics.data.augment import Format
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.utils.instance import Instances
    from ultralytics.utils.ops import resample_segments

    n = len(cls)
    segments = np.zeros((0, SEGMENT_RESAMPLES["segment"], 2), dtype=np.float32)  # as update_labels_info, line 429
    if task in SEGMENT_RESAMPLES and n:
        max_len, resamples = max(len(s) for s in polygons), SEGMENT_RESAMPLES[task]
        resamples = max_len + 1 if resamples < max_len else resamples  # as update_labels_info, line 425
        segments = np.stack(resample_segments([np.asarray(s, np.float32) for s in polygons], n=resamples))
    instances = Instances(
        np.array(boxes, np.float32).reshape(n, 4),
        segments,  # copies: Format works in place
        None if keypoints is None else np.array(keypoints, np.float32),
        bbox_format="xywh",
        normalized=False,
    )
    labels = {"img": image, "cls": np.array(cls, np.float32).reshape(n, 1), "instances": instances}
    formatter = Format(
        bbox_format="xywh",
        normalize=True,
        return_mask=task == "segment",
        return_keypoint=task == "pose",
        return_obb=task == "obb",
        batch_idx=True,
        mask_ratio=mask_ratio,
        mask_overlap=False,
    )
    batch = YOLODataset.collate_fn([formatter(labels)])
    rows = np.arange(n)
    if task == "obb":
        kept = obb_kept(batch["bboxes"], torch.tensor(image.shape[:2]))  # (n,)
        rows = rows[kept.numpy()]
        batch.update(bboxes=batch["bboxes"][kept], cls=batch["cls"][kept], batch_idx=batch["batch_idx"][kept])
    return batch, rows


