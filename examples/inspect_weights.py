"""Run the FSS assigner on one batch and read, per ground truth, its dynamic k, positives and Eq. (8) weights.

This is what the loss sees each iteration; here with a freshly built (untrained) YOLO11n and a generated image.

    python examples/inspect_weights.py
"""

import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG_DICT

from ultralytics_fss import FSS_DEFAULTS, build_fss_criterion

torch.manual_seed(0)
imgsz = 128
model = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
model.args = get_cfg({**DEFAULT_CFG_DICT, **FSS_DEFAULTS})  # what FSSTrainer attaches to the model
criterion = build_fss_criterion(model)  # FSSDetectionLoss; criterion.assigner is an FSSAssigner

# One image, three overlapping ground truths, as Ultralytics' loader hands them: class, normalised xywh.
xyxy = torch.tensor([[20.0, 20.0, 60.0, 70.0], [40.0, 30.0, 90.0, 80.0], [70.0, 70.0, 110.0, 100.0]])
batch = {
    "batch_idx": torch.zeros(3),
    "cls": torch.tensor([[0.0], [1.0], [2.0]]),
    "bboxes": torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1) / imgsz,
}

with torch.no_grad():
    preds = criterion.parse_output(model.train()(torch.rand(1, 3, imgsz, imgsz)))
    x = criterion.inputs(preds, batch)  # the loss's own prelude: decoded boxes, anchors, padded GTs
    result, k = criterion.fss_assign(x, preds)  # the assigner call the loss makes each iteration
anchors = x.anchor_points
print(f"anchors N={anchors.shape[0]}, positives={int(result.fg_mask.sum())}")
for j in range(3):
    pos = result.fg_mask[0] & (result.gt_idx[0] == j)
    w = result.weights[0, pos]
    iou = result.scores[0, pos].sum(-1)
    print(f"GT {j}: k={int(k[0, j])}, positives={int(pos.sum())}, "
          f"IoU targets={[round(float(x), 3) for x in iou]}, weights={[round(float(x), 3) for x in w]}")
