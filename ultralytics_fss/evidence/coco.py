"""COCO metrics for any YOLO dataset, scored by pycocotools (the official implementation).

The ground truth is built from the YOLO labels of a split (`ground_truth`), predictions come from Ultralytics' own
validator (`save_txt`, conf 0.001, its NMS and max_det) or from elsewhere (`read_predictions`: a folder of YOLO txt
files `cls cx cy w h conf`, or a COCO results JSON whose rows carry `file_name`), and `coco_metrics` returns the twelve
numbers of `COCOeval.stats`. Boxes are in original-image pixels throughout, so the small / medium / large ranges are
COCO's: area < 32^2, 32^2-96^2, > 96^2 pixels of the original image, area = box width x height.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any


from ultralytics_fss.metrics.coco import COCO_KEYS, coco_metrics, format_metrics  # noqa: F401 (public here too)


def split_images(data: str | Path, split: str = "val") -> tuple[list[Path], dict[int, str]]:
    """The image files of a split of an Ultralytics dataset YAML, found the way its dataloaders find them, and its
    class names.

    Raises:
        ValueError: If the YAML has no such split.
    """
    from ultralytics.data.base import BaseDataset
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data), autodownload=False)
    if not info.get(split):
        have = [k for k in ("train", "val", "test") if info.get(k)]
        raise ValueError(f"--split {split!r}: {data} has no '{split}' split (it has {have})")
    # Ultralytics' own file listing (directories, txt lists, single files); it reads only these two attributes.
    files = BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), info[split])
    return [Path(f) for f in files], dict(info["names"])


def ground_truth(data: str | Path, split: str = "val") -> dict[str, Any]:
    """COCO ground truth (a dict as in `instances_*.json`) from the YOLO labels of `split`.

    Images get ids 1..n in file order and their file name (relative to the split's images folder when it has one),
    width and height (EXIF-corrected, as Ultralytics reads them); categories keep the dataset's class ids and names;
    each label row becomes an annotation with `bbox` [x, y, w, h] in original-image pixels, `area` w * h, `iscrowd` 0.

    Raises:
        ValueError: If the split has no label file at all, or a label row is malformed (file and line named).
    """
    from PIL import Image
    from ultralytics.data.utils import exif_size, img2label_paths

    files, names = split_images(data, split)
    images, annotations, found = [], [], 0
    for image_id, (file, label_file) in enumerate(zip(files, img2label_paths([str(f) for f in files])), start=1):
        with Image.open(file) as im:
            width, height = exif_size(im)
        images.append(dict(id=image_id, file_name=file.name, width=width, height=height, key=_key(file)))
        label_file = Path(label_file)
        if not label_file.is_file():
            continue
        found += 1
        for n, line in enumerate(label_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            values = line.split()
            if len(values) != 5:  # segments and keypoints: not a detect label
                raise ValueError(f"{label_file}:{n}: expected 'class cx cy w h', got {line.strip()!r}")
            cls, cx, cy, w, h = _numbers(values, f"{label_file}:{n}", line)
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=int(cls),
                    bbox=box,
                    area=box[2] * box[3],
                    iscrowd=0,
                )
            )
    if not found:
        raise ValueError(f"--data {data}: no label files for the {len(files)} '{split}' images (looked in 'labels/')")
    categories = [dict(id=int(i), name=str(n)) for i, n in names.items()]
    return dict(images=images, annotations=annotations, categories=categories)


def _key(file: Path) -> str:
    """How prediction files are matched to images: by file stem."""
    return file.stem


def _numbers(values: list[str], where: str, line: str) -> list[float]:
    """The values of a txt row as floats.

    Raises:
        ValueError: Naming `where` (file:line), the first value that is not a number, and the row.
    """
    out = []
    for v in values:
        try:
            out.append(float(v))
        except ValueError:
            raise ValueError(f"{where}: {v!r} is not a number, in {line.strip()!r}") from None
    return out


JSON_ROW_KEYS = ("file_name", "category_id", "bbox", "score")  # what each row of a COCO results JSON must carry here


def _json_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a COCO results JSON: a list of objects with `JSON_ROW_KEYS`, values checked.

    Returns:
        (list[dict]): Each row with `file_name` (str), `category_id` (int), `bbox` (four floats), `score` (float).

    Raises:
        ValueError: For a file that is not JSON (line and column named), JSON that is not a list of objects, or a row
            (index named, from 0) that lacks a key or holds a value of the wrong kind.
    """
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (expected a COCO results JSON)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None
    keys = ", ".join(JSON_ROW_KEYS)
    if not isinstance(rows, list):
        raise ValueError(
            f"{path}: expected a JSON list of COCO results [{{{keys}}}, ...], got a JSON {_json_kind(rows)}"
        )
    out = []
    for n, row in enumerate(rows):
        where = f"{path}: row {n}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected an object with {keys}, got a JSON {_json_kind(row)}")
        missing = [k for k in JSON_ROW_KEYS if k not in row]
        if missing:
            raise ValueError(f"{where}: no {', '.join(repr(k) for k in missing)} (each row needs {keys})")
        cls, bbox, score = row["category_id"], row["bbox"], row["score"]
        if not (_is_json_number(cls) and float(cls).is_integer()):
            raise ValueError(f"{where}: category_id must be an integer, got {cls!r}")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_json_number(v) for v in bbox)):
            raise ValueError(f"{where}: bbox must be four numbers [x, y, w, h], got {bbox!r}")
        if not _is_json_number(score):
            raise ValueError(f"{where}: score must be a number, got {score!r}")
        out.append(
            dict(
                file_name=str(row["file_name"]), category_id=int(cls), bbox=[float(v) for v in bbox], score=float(score)
            )
        )
    return out


def _is_json_number(value: Any) -> bool:
    """Whether a parsed JSON value is a number (not a bool, which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    """JSON's name for the kind of a parsed value, for messages."""
    kinds = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return kinds.get(type(value), "null")


def read_predictions(path: str | Path, gt: dict[str, Any]) -> list[dict[str, Any]]:
    """COCO results (`image_id`, `file_name`, `category_id`, `bbox` x, y, w, h in original pixels, `score`) from a
    folder of YOLO txt files (`cls cx cy w h conf`, normalised, one file per image named like it, as Ultralytics'
    `save_txt=True save_conf=True` writes them) or from a COCO results JSON whose rows carry `file_name`.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: For a folder without txt files, a malformed txt row (file and line named), a JSON file that is not
            JSON or not a list of result objects, a row without one of `JSON_ROW_KEYS` or with a value of the wrong
            kind (file and row index named), a file or `file_name` that names no image of the split, or a class the
            dataset does not have.
    """
    path = Path(path)
    by_key = {im["key"]: im for im in gt["images"]}
    by_name = {im["file_name"]: im for im in gt["images"]}
    classes = {c["id"] for c in gt["categories"]}
    out = []
    if path.is_dir():
        txts = sorted(path.glob("*.txt"))
        if not txts:
            raise ValueError(f"--predictions {path}: no .txt files (expected one per image, 'cls cx cy w h conf')")
        for txt in txts:
            im = by_key.get(txt.stem)
            if im is None:
                raise ValueError(f"{txt}: names no image of the split (expected an image named {txt.stem}.*)")
            for n, line in enumerate(txt.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                values = line.split()
                if len(values) != 6:
                    raise ValueError(f"{txt}:{n}: expected 'cls cx cy w h conf' (save_conf=True), got {line.strip()!r}")
                cls, cx, cy, w, h, conf = _numbers(values, f"{txt}:{n}", line)
                box = [(cx - w / 2) * im["width"], (cy - h / 2) * im["height"], w * im["width"], h * im["height"]]
                out.append(
                    dict(image_id=im["id"], file_name=im["file_name"], category_id=int(cls), bbox=box, score=conf)
                )
    elif path.is_file():
        for n, row in enumerate(_json_rows(path)):
            im = by_name.get(Path(row["file_name"]).name)
            if im is None:
                raise ValueError(f"{path}: row {n}: file_name {row['file_name']!r} names no image of the split")
            out.append(
                dict(
                    image_id=im["id"],
                    file_name=im["file_name"],
                    category_id=row["category_id"],
                    bbox=row["bbox"],
                    score=row["score"],
                )
            )
    else:
        raise FileNotFoundError(f"--predictions {path} does not exist")
    unknown = sorted({p["category_id"] for p in out} - classes)
    if unknown:
        raise ValueError(f"--predictions {path}: classes {unknown} are not in the dataset's {sorted(classes)}")
    return out


def evaluate(
    data: str | Path,
    model: str | Path | None = None,
    predictions: str | Path | None = None,
    split: str = "val",
    out: str | Path = "runs/coco",
    **val_args: Any,
) -> dict[str, float]:
    """COCO metrics of a model (validated by Ultralytics' own validator) or of predictions made elsewhere.

    Writes `out/coco_metrics.json` (the twelve numbers), `out/predictions.json` (COCO results with `file_name`) and
    `out/ground_truth.json` (the COCO ground truth built from the YOLO labels), each written whole or not at all.

    Args:
        data (str | Path): Dataset YAML.
        model (str | Path, optional): Weights to validate (exactly one of `model` and `predictions`).
        predictions (str | Path, optional): A folder of YOLO txt files or a COCO results JSON.
        split (str): `val`, `test` or `train`.
        out (str | Path): Output folder.
        **val_args (Any): Further validator arguments (imgsz, batch, device...); conf is 0.001 unless given.

    Returns:
        (dict[str, float]): The twelve COCO numbers by name.

    Raises:
        ValueError: For both or neither of `model` and `predictions`, and for the errors of `ground_truth` and
            `read_predictions`, before anything is written.
    """
    if (model is None) == (predictions is None):
        raise ValueError("give exactly one of --model and --predictions")
    out = Path(out)
    gt = ground_truth(data, split)  # fails before any validation runs or anything is written
    if model is not None:
        import tempfile

        from ultralytics import YOLO

        with tempfile.TemporaryDirectory() as tmp:
            args = dict(conf=0.001, plots=False, verbose=False, **val_args)
            validator = YOLO(model).val(
                data=str(data), split=split, save_txt=True, save_conf=True, project=tmp, name="val", **args
            )
            labels = Path(validator.save_dir) / "labels"
            dets = read_predictions(labels, gt) if any(labels.glob("*.txt")) else []
    else:
        dets = read_predictions(predictions, gt)
    metrics = coco_metrics(gt, dets)
    out.mkdir(parents=True, exist_ok=True)
    images = [{k: v for k, v in im.items() if k != "key"} for im in gt["images"]]
    for name, content in (("ground_truth.json", {**gt, "images": images}), ("predictions.json", dets),
                          ("coco_metrics.json", metrics)):
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(content))
        tmp.replace(out / name)  # whole or not at all
    return metrics


def add_metrics_to_csv(csv_file: str | Path, metrics: dict[str, float], suffix: str = "(B)") -> None:
    """Add `metrics/{name}{suffix}` columns to an Ultralytics results.csv, filled in its last row only (earlier rows
    empty); the file is replaced whole."""
    import csv

    csv_file = Path(csv_file)
    with open(csv_file, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    names = [f"metrics/{k}{suffix}" for k in COCO_KEYS]
    keep = [i for i, h in enumerate(header) if h.strip() not in names]  # a second call replaces the columns
    header = [header[i] for i in keep] + names
    body = [[r[i] for i in keep] + [""] * len(names) for r in body]
    if body:
        body[-1][-len(names) :] = [f"{metrics[k]:.5g}" for k in COCO_KEYS]
    tmp = csv_file.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    tmp.replace(csv_file)


# Variables of a torch.distributed process: a process without them is not a DDP rank for Ultralytics or torch.
DDP_ENV = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
           "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}  # fmt: skip


def evaluate_alone(device: str, **kwargs: Any) -> dict[str, float]:
    """`evaluate(**kwargs, device=device)` in a fresh Python process that is not a DDP rank; its twelve numbers.

    A DDP rank's validator takes Ultralytics' multi-GPU branch (barriers, `gather_object` to rank 0) whenever the
    process is a rank (`ultralytics.utils.RANK`, read from WORLD_SIZE > 1 at import), so rank 0 validating alone
    after training waits for ranks that have finished. The child gets the environment without the DDP variables
    (`DDP_ENV`, TORCHELASTIC_*), so it validates as a single process on `device` (a torch device index or `cpu`,
    counted in the inherited CUDA_VISIBLE_DEVICES as the rank's own is). Its output goes to this process's.

    Raises:
        subprocess.CalledProcessError: If the evaluation failed (its error is in the output above).
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in DDP_ENV and not k.startswith("TORCHELASTIC_")}
    root = str(Path(__file__).resolve().parents[2])  # the folder holding this package, importable in the child
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    code = "import json, sys; from ultralytics_fss.evidence.coco import evaluate; evaluate(**json.loads(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, json.dumps({**kwargs, "device": device}, default=str)], env=env, check=True
    )
    return json.loads((Path(kwargs["out"]) / "coco_metrics.json").read_text())


def on_train_end(trainer) -> None:
    """`on_train_end` callback of the `fss_coco=True` training option: score `best.pt` on the validation split with
    pycocotools, print the twelve numbers and add them to the last row of results.csv (`metrics/AP75(B)`, ...);
    files in `save_dir/coco`. Main process only (Ultralytics calls it on rank 0 alone); a DDP rank 0 validates in a
    fresh single process (`evaluate_alone`), on its own device."""
    from ultralytics.utils import LOGGER, RANK, colorstr

    if RANK not in {-1, 0} or not Path(trainer.best).is_file():
        return
    out = Path(trainer.save_dir) / "coco"
    kwargs = dict(
        data=trainer.args.data,
        model=trainer.best,
        split="val",
        out=out,
        imgsz=trainer.args.imgsz,
        batch=trainer.args.batch,
    )
    if RANK == 0:  # a DDP rank: the other ranks have left, and an in-process validator would wait for them
        device = trainer.device
        metrics = evaluate_alone(str(device.index or 0) if device.type == "cuda" else device.type, **kwargs)
    else:
        metrics = evaluate(**kwargs, device=trainer.args.device)
    add_metrics_to_csv(trainer.csv, metrics)
    LOGGER.info(f"\n{colorstr('bold', 'COCO metrics')} (pycocotools, best.pt, val split)\n{format_metrics(metrics)}")
