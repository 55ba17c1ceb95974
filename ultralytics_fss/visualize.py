"""``python -m ultralytics_fss.visualize``: a picture of what FSS and Ultralytics' TAL assign on one image.

The command line of :func:`ultralytics_fss.evidence.pictures.visualize_assignment`, for detect, obb, segment and pose
models (labels in the model's task's YOLO format; obb: the 4 corners).

Examples:
    python -m ultralytics_fss.visualize --model runs/detect/train/weights/best.pt --source val/images/0001.jpg
    python -m ultralytics_fss.visualize --model best.pt --source img.png --labels img.txt --gt 6 --order crowded
    python -m ultralytics_fss.visualize --model runs/obb/train/weights/best.pt --source tiles/images/val/P0706.png
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.utils import LOGGER, colorstr

from ultralytics_fss.large_images.files import unwritable
from ultralytics_fss.evidence.compare import CommandLine
from ultralytics_fss.evidence.pictures import visualize_assignment


def main(argv: list[str] | None = None) -> str:
    """Parse arguments, draw the picture, save it; return its path."""
    p = CommandLine(prog="python -m ultralytics_fss.visualize", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="weights (best.pt) or a model YAML: detect, obb, segment or pose")
    p.add_argument("--source", required=True, help="image file")
    p.add_argument("--labels", help="YOLO label file of the image, in the model's task's format (default: found the "
                                    "Ultralytics way)")
    p.add_argument("--imgsz", type=int, default=640, help="image size the model sees")
    p.add_argument("--gt", type=int, default=4, help="ground truths drawn")
    p.add_argument("--order", choices=["largest", "crowded"], default="largest", help="which ground truths first")
    p.add_argument("--assigner", choices=["fss", "maxiou", "atss", "simota", "paa", "dw"],
                   help="drawn beside TAL (default: the model's fss_assigner, else fss)")
    p.add_argument("--device", default="cpu", help="device, e.g. cpu, 0")
    p.add_argument("--out", default="assign.png", help="picture file")
    a = p.parse_args(argv)
    if why := unwritable(Path(a.out).parent):
        p.error(f"--out {a.out}: cannot write there: {why}")
    try:
        fss = {"fss_assigner": a.assigner} if a.assigner else {}
        visualize_assignment(a.model, a.source, a.labels, a.imgsz, a.gt, a.order, out=a.out, device=a.device, **fss)
    except (FileNotFoundError, ValueError, NotImplementedError) as e:  # one line, no usage: the arguments parsed
        p.exit(2, f"{p.prog}: error: {e}\n")
    LOGGER.info(f"Assignment picture saved to {colorstr('bold', a.out)}")
    return a.out


if __name__ == "__main__":
    main()
