"""``python -m ultralytics_fss.evaluate``: COCO metrics (pycocotools) of a model or of predictions, on a YOLO dataset.

The command line of :func:`ultralytics_fss.evidence.coco.evaluate`.

Examples:
    python -m ultralytics_fss.evaluate --model runs/detect/train/weights/best.pt --data data.yaml --out runs/coco
    python -m ultralytics_fss.evaluate --predictions runs/detect/predict/labels --data data.yaml --split test
"""

from __future__ import annotations

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.large_images.files import unwritable
from ultralytics_fss.evidence.coco import evaluate, format_metrics
from ultralytics_fss.evidence.compare import CommandLine


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse arguments, evaluate, print the table; return the twelve numbers.

    Raises:
        SystemExit: With status 2 after one line (`prog: error: ...`, naming the file and line or row) for bad
            arguments or input; nothing is written then.
    """
    p = CommandLine(prog="python -m ultralytics_fss.evaluate", description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="weights to validate with Ultralytics' validator (conf 0.001)")
    source.add_argument("--predictions", help="folder of YOLO txt files (cls cx cy w h conf) or COCO results JSON")
    p.add_argument("--data", required=True, help="dataset YAML")
    p.add_argument("--split", default="val", help="split of the dataset YAML to score")
    p.add_argument("--imgsz", type=int, default=640, help="inference size, with --model")
    p.add_argument("--batch", type=int, default=16, help="batch size, with --model")
    p.add_argument("--device", help="device, e.g. cpu, 0, with --model (default: Ultralytics' choice)")
    p.add_argument("--out", default="runs/coco", help="output folder")
    a = p.parse_args(argv)
    if why := unwritable(a.out):
        p.error(f"--out {a.out}: cannot write there: {why}")
    val_args = dict(imgsz=a.imgsz, batch=a.batch, device=a.device) if a.model else {}
    try:
        metrics = evaluate(a.data, a.model, a.predictions, a.split, a.out, **val_args)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    LOGGER.info(f"\n{colorstr('bold', 'COCO metrics')} (pycocotools, {a.split} split)\n{format_metrics(metrics)}")
    LOGGER.info(f"Saved coco_metrics.json, predictions.json, ground_truth.json to {colorstr('bold', a.out)}")
    return metrics


if __name__ == "__main__":
    main()
