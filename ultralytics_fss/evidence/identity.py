"""What determines a comparison run's result, recorded with the run so that a run is reused only for the same question.

A run's record holds its variant and resolved `fss_*` values (None: Ultralytics' own trainer), seed, model (and a
hash of the model file when it is a local file), dataset (its YAML's content and a fingerprint of every label file
and image of its splits), every train argument given, the kind of device, and the versions of ultralytics_fss (with
a hash of its training code), Ultralytics and torch. `python -m ultralytics_fss.compare` (`evidence.compare.run_all`)
reuses a run only when its stored record equals the new one exactly, resumes it when it is unfinished, and trains
into a new folder otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ultralytics_fss.large_images.merge_back.full_images import tiled_root
from ultralytics_fss.large_images.tiling.output import MANIFEST

# Train arguments that place a run, not what it computes: left out of the record (`device` enters as its kind only).
PLACEMENT_KEYS = {"device", "workers", "project", "name", "exist_ok", "resume"}


class DataError(ValueError):
    """A dataset, model or argument that cannot be used; the message names it (the CLI prints it, exit 2)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_fingerprint(data: str | Path) -> dict[str, Any]:
    """Resolve `data` with Ultralytics' own dataset check and fingerprint it.

    Args:
        data (str | Path): A dataset YAML (a path, or a name Ultralytics knows such as `coco8.yaml`; Ultralytics
            downloads a known dataset that is missing, where the network allows).

    Returns:
        (dict): `yaml` (the YAML file's sha256), `labels` (sha256 over every split's image names and sizes and the
            content of their label files), `images` (number of images over the splits) and, for a tiler's output,
            `tiles` (the sha256 of its manifest).

    Raises:
        DataError: When the YAML is missing or unreadable or a split has no images (message names it).
    """
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths
    from ultralytics.utils.checks import check_file

    try:
        yaml_file = Path(check_file(str(data)))
        info = check_det_dataset(str(data))
    except Exception as e:  # Ultralytics raises FileNotFoundError, SyntaxError, KeyError... with its own message
        raise DataError(f"--data {data}: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")
    digest, count = hashlib.sha256(), 0
    for split in ("train", "val", "test"):
        entries = info.get(split)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            entry = Path(entry)
            if entry.is_dir():
                files = sorted(p for p in entry.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
                root = entry
            elif entry.is_file():  # an image-list file, one path a line (relative to the file's folder with ./)
                lines = [x.strip() for x in entry.read_text().splitlines() if x.strip()]
                files = [entry.parent / x[2:] if x.startswith("./") else Path(x) for x in lines]
                root = entry.parent
            else:
                raise DataError(f"--data {data}: split {split!r} path {entry} does not exist")
            if not files:
                raise DataError(f"--data {data}: split {split!r} ({entry}) holds no images")
            for image, label in zip(files, img2label_paths([str(f) for f in files])):
                label = Path(label)
                name = image.relative_to(root) if image.is_relative_to(root) else image
                digest.update(f"{split}\0{name}\0{image.stat().st_size if image.exists() else -1}\0".encode())
                digest.update(label.read_bytes() if label.is_file() else b"\0no label\0")
            count += len(files)
    info = {"yaml": _sha256(yaml_file.read_bytes()), "labels": digest.hexdigest(), "images": count}
    if (root := tiled_root(yaml_file)) is not None:  # the tiling: which tile comes from which image, rate and offset
        info["tiles"] = _sha256((root / MANIFEST).read_bytes()) if (root / MANIFEST).is_file() else None
    return info


def model_fingerprint(model: str) -> dict[str, Any]:
    """`model` as given, with the sha256 of the file when it is a local file (a YAML or weights of that name may
    change); names Ultralytics resolves itself (`yolo11n.yaml`, `yolo11n.pt`) are identified by name and version.

    Raises:
        DataError: When `model` is a path (it has a folder) that does not exist, or a YAML Ultralytics cannot find.
    """
    path = Path(model)
    if path.is_file():
        return {"model": model, "sha256": _sha256(path.read_bytes())}
    if path.parent != Path("."):
        raise DataError(f"--model {model} does not exist")
    if path.suffix in {".yaml", ".yml"}:
        from ultralytics.nn.tasks import yaml_model_load

        try:
            yaml_model_load(model)  # Ultralytics' own lookup (yolo11n.yaml is yolo11.yaml at scale n)
        except Exception:
            raise DataError(f"--model {model} is neither a file nor a model YAML Ultralytics ships") from None
    else:
        from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

        if model not in GITHUB_ASSETS_NAMES:  # Ultralytics downloads its own weights when the network allows
            raise DataError(f"--model {model} does not exist and is not a model Ultralytics downloads")
    return {"model": model}


def package_version() -> str:
    """The ultralytics-fss version (`ultralytics_fss.__version__`, the one place it is set; the build reads it)."""
    from ultralytics_fss import __version__

    return __version__


def training_code_hash() -> str:
    """sha256 of the package code a training run executes (`assign/`, `train/`): an upgrade that changes it makes
    every run new, even under the same version number."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*(root / "assign").rglob("*.py"), *(root / "train").rglob("*.py")]):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def run_record(variant: str, fss: dict | None, seed: int, train_args: dict, data: dict, model: dict) -> dict:
    """The record that identifies one comparison run (see the module docstring).

    Args:
        variant (str): Variant name.
        fss (dict | None): The variant's `fss_*` keys (None: Ultralytics' own trainer); completed with defaults here.
        seed (int): Training seed.
        train_args (dict): Every train argument given to the run (placement keys are left out).
        data (dict): `dataset_fingerprint` of the data, with its path under `path`.
        model (dict): `model_fingerprint` of the model.
    """
    import torch
    import ultralytics

    from ultralytics_fss.train.cfg import check_fss_args

    device = str(train_args.get("device") or "").lower()  # "" = Ultralytics' choice: the GPU when there is one
    kind = device if device in {"cpu", "mps"} else "cuda" if device or torch.cuda.is_available() else "cpu"
    args = {k: v for k, v in sorted(train_args.items()) if k not in PLACEMENT_KEYS and k != "model"}
    record = {
        "variant": variant,
        "fss": None if fss is None else check_fss_args(fss),
        "seed": seed,
        "model": model,
        "data": data,
        "train_args": args,
        "device_type": kind,
        "versions": {"ultralytics_fss": package_version(), "ultralytics_fss_code": training_code_hash(),
                     "ultralytics": ultralytics.__version__, "torch": torch.__version__},
    }
    return json.loads(json.dumps(record))  # as stored: tuples become lists, so a stored record compares equal


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two records, with both values (`train_args.epochs: 1 -> 2`)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            show = [v[:12] if isinstance(v, str) and len(v) == 64 else v for v in (a, b)]  # short hashes
            out.append(f"{prefix}{key}: {show[0]} -> {show[1]}")
    return out
