"""Speed and peak memory of FSSAssigner vs Ultralytics' TaskAlignedAssigner, on identical inputs; the paper's Table 5
baselines PAA and DW beside them.

    python benchmarks/assigner.py                                   # all shapes, CPU
    python benchmarks/assigner.py --shapes 16x640x8 4x1024x300 --repeats 3
    python benchmarks/assigner.py --device cuda
    python benchmarks/assigner.py --boxes obb                       # RotatedFSSAssigner vs RotatedTaskAlignedAssigner
    python benchmarks/assigner.py --baselines                       # FSS and TAL only (default: --baselines paa dw)

Method:
    Inputs mimic what `v8DetectionLoss` feeds the assigner: anchor centres in pixels from `make_anchors` over the
    strides 8/16/32 of a square image (N=8400 at 640 px, N=21504 at 1024 px); per image between M/2 and M real GTs
    (the first image has exactly M, the rest is padding, as in a padded batch) with log-uniform sides (8-128 px
    unless the shape says otherwise, 1:3 to 3:1), centres uniform over the image; predicted boxes centred near each
    anchor with noise, 1-8 strides wide; sigmoid class scores over 80 classes. TAL is built as `v8DetectionLoss`
    builds it (topk=10, alpha=0.5, beta=6.0) and FSS with its defaults (q=10, alpha=0.5, beta=6.0, u=2.0), called
    as `FSSDetectionLoss` calls it (with the feature-map grid, so step 1 lists the candidate pairs in O(P)); the
    baselines of `--baselines` (axis-aligned boxes only) with their defaults and the default soft target, called
    the same way, on the same inputs, and reported in a second table with their ratios to TAL (no target). A shape
    is `BxIMGSZxM`, optionally `@LO-HI` for the GT side range in pixels (the DOTA-like case: 8x1024x2000@4-44).

    Time: median wall time of `--repeats` calls after one warm-up call each, in this process, TAL and FSS
    interleaved (alternating which goes first) so that load drift on a shared machine hits both alike; torch's
    thread count is left at its default; on CUDA each call is synchronised.

    Peak memory: each (assigner, shape) case runs in a fresh subprocess (this script with `--case`). On CPU it runs
    with MALLOC_MMAP_THRESHOLD_=65536, so glibc serves every large tensor by mmap and gives it back on free and RSS
    follows the live tensors; once the inputs are built and one warm-up call is done, it writes "5" to
    /proc/self/clear_refs (which resets VmHWM to the current RSS), calls the assigner once, and reports VmHWM minus
    the VmRSS read just before the call: the extra memory of the assignment, outputs included. On CUDA it reports
    `torch.cuda.max_memory_allocated` minus `torch.cuda.memory_allocated` before the call. A case whose subprocess
    dies (out of memory) is reported as not fitting, with the memory it would need for its (b, M, N) tensors, and is
    then not timed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
from ultralytics.utils.ops import xyxy2xywh
from ultralytics.utils.tal import RotatedTaskAlignedAssigner, TaskAlignedAssigner, make_anchors

from ultralytics_fss.assign import BASELINES, FSSAssigner, RotatedFSSAssigner

SHAPES = ("16x640x8", "16x640x32", "16x640x128", "4x1024x300", "4x1024x1000", "8x1024x2000@4-44")
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
MANY_GTS = 128  # from this M on, the targets are 0.25x TAL's time and memory; below it 1.0x
TARGETS = {"many": 0.25, "few": 1.0}  # FSS / TAL ratios, time and memory alike
OBB_TARGETS = {"time": 1.0, "memory": 0.5}  # rotated boxes: at every shape (issue 9)
MIB = 2**20


def parse_shape(shape: str) -> tuple[int, int, int, int, tuple[float, float]]:
    """Return (b, N, M, imgsz, (lo, hi) GT sides in pixels) for a `BxIMGSZxM[@LO-HI]` shape."""
    dims, _, sides = shape.lower().partition("@")
    b, imgsz, m = (int(v) for v in dims.split("x"))
    if imgsz % max(STRIDES):
        raise ValueError(f"image size {imgsz} is not a multiple of the largest stride {max(STRIDES)}")
    lo, hi = (float(v) for v in sides.split("-")) if sides else (8.0, 128.0)
    return b, sum((imgsz // s) ** 2 for s in STRIDES), m, imgsz, (lo, hi)


def make_inputs(shape: str, device: str, seed: int = 0, boxes: str = "hbb") -> tuple[torch.Tensor, ...]:
    """Build the six assigner inputs for `shape` (see the module docstring), identical for a given seed; with
    `boxes="obb"` the boxes are xywhr with uniform random angles.

    Returns:
        (tuple[torch.Tensor, ...]): pd_scores (b, N, C), pd_bboxes (b, N, 4), anc_points (N, 2), gt_labels (b, M, 1),
            gt_bboxes (b, M, 4), mask_gt (b, M, 1), all float32 on `device`.
    """
    b, n, m, imgsz, (lo, hi) = parse_shape(shape)
    g = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([[imgsz // s] * 2 for s in STRIDES], dtype=torch.float32)
    anchors, stride = make_anchors(sizes, torch.tensor(STRIDES, dtype=torch.float32))
    anc_points = anchors * stride  # (N, 2) pixels, as v8DetectionLoss passes them

    # GTs: log-uniform sides lo-hi px, aspect 1:3-3:1, centres uniform, clipped to the image.
    side = torch.exp(torch.empty(b, m, 1).uniform_(math.log(lo), math.log(hi), generator=g))
    aspect = torch.exp(torch.empty(b, m, 1).uniform_(-math.log(3), math.log(3), generator=g)).sqrt()
    wh = torch.cat((side * aspect, side / aspect), -1)
    xy = torch.rand(b, m, 2, generator=g) * imgsz
    gt_bboxes = torch.cat((xy - wh / 2, xy + wh / 2), -1).clamp_(0, imgsz)
    gt_labels = torch.randint(0, NUM_CLASSES, (b, m, 1), generator=g).float()
    counts = torch.randint(max(m // 2, 1), m + 1, (b,), generator=g)
    counts[0] = m
    mask_gt = (torch.arange(m)[None] < counts[:, None]).float().unsqueeze(-1)
    gt_bboxes *= mask_gt  # padding rows are zeros, as in v8DetectionLoss.preprocess
    gt_labels *= mask_gt

    # Predictions: boxes near each anchor (centre jitter 0.5 stride, 1-8 strides wide), sigmoid scores.
    centre = anc_points + torch.randn(b, n, 2, generator=g) * stride / 2
    pwh = stride * torch.exp(torch.empty(b, n, 2).uniform_(0, math.log(8), generator=g))
    pd_bboxes = torch.cat((centre - pwh / 2, centre + pwh / 2), -1)
    pd_scores = (torch.randn(b, n, NUM_CLASSES, generator=g) * 2 - 4).sigmoid()
    if boxes == "obb":  # xywhr, angles in [0, pi)
        gt_bboxes = torch.cat((xyxy2xywh(gt_bboxes), torch.rand(b, m, 1, generator=g) * math.pi), -1) * mask_gt
        pd_bboxes = torch.cat((xyxy2xywh(pd_bboxes), torch.rand(b, n, 1, generator=g) * math.pi), -1)
    tensors = (pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)
    return tuple(t.contiguous().to(device) for t in tensors)


def build(name: str, imgsz: int, boxes: str = "hbb"):
    """Return a call of the assigner `name` ('tal', 'fss' or a `BASELINES` name) as the training criterion builds and
    calls it."""
    if name == "tal":
        tal = RotatedTaskAlignedAssigner if boxes == "obb" else TaskAlignedAssigner
        return tal(topk=10, num_classes=NUM_CLASSES, alpha=0.5, beta=6.0, stride=list(STRIDES))
    if name in BASELINES:
        assigner = BASELINES[name](num_classes=NUM_CLASSES, alpha=0.5, beta=6.0, stride=list(STRIDES))
    else:
        fss_class = RotatedFSSAssigner if boxes == "obb" else FSSAssigner
        assigner = fss_class(num_classes=NUM_CLASSES, alpha=0.5, beta=6.0, u=2.0, q=10, stride=list(STRIDES))
    grid = [(imgsz // s, imgsz // s) for s in STRIDES]
    return lambda *inputs: assigner.assign(*inputs, grid=grid)


def _status_kib(field: str) -> int:
    """Return a kB field (VmRSS, VmHWM) of /proc/self/status."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def run_case(name: str, shape: str, device: str, boxes: str = "hbb") -> float:
    """Return the peak extra memory (MiB) of one call of assigner `name` on `shape`; meant for a fresh process."""
    assigner, inputs = build(name, parse_shape(shape)[3], boxes), make_inputs(shape, device, boxes=boxes)
    out = assigner(*inputs)  # warm-up: lazy initialisation is not the assignment's memory
    del out
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = assigner(*inputs)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / MIB
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    out = assigner(*inputs)
    return (_status_kib("VmHWM") - before) / 1024


def peak_mib(name: str, shape: str, device: str, boxes: str = "hbb") -> float | None:
    """Run `run_case` in a fresh subprocess and return its result; None when it died (out of memory)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    cmd = [sys.executable, os.path.abspath(__file__), "--case", name, shape, "--device", device, "--boxes", boxes]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode:
        print(f"{name} {shape}: did not fit (exit {res.returncode}): {res.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]


def dense_mib(shape: str) -> float:
    """Memory of one float32 (b, M, N) tensor: TAL builds several of them."""
    b, n, m, *_ = parse_shape(shape)
    return b * m * n * 4 / MIB


def time_ms(shape: str, device: str, repeats: int, names=("tal", "fss"), boxes: str = "hbb") -> dict[str, float]:
    """Return the median wall time (ms) per assigner on `shape`, the assigners interleaved."""
    inputs = make_inputs(shape, device, boxes=boxes)
    assigners = {name: build(name, parse_shape(shape)[3], boxes) for name in names}
    times = {name: [] for name in assigners}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for name, assigner in assigners.items():  # warm-up
        assigner(*inputs)
    for i in range(repeats):
        for name in (names if i % 2 == 0 else names[::-1]):
            sync()
            t0 = time.perf_counter()
            out = assigners[name](*inputs)
            sync()
            times[name].append((time.perf_counter() - t0) * 1e3)
            del out
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; either run one `--case` (prints JSON) or benchmark all shapes and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), help="BxIMGSZxM[@LO-HI] shapes")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per assigner and shape, after one warm-up")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--boxes", default="hbb", choices=("hbb", "obb"), help="axis-aligned (detect) or rotated boxes")
    p.add_argument("--baselines", nargs="*", default=["paa", "dw"], choices=sorted(BASELINES),
                   help="baselines timed and measured beside TAL and FSS (axis-aligned boxes only)")
    p.add_argument("--case", nargs=2, metavar=("ASSIGNER", "SHAPE"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.case:
        print(json.dumps({"peak_mib": run_case(*a.case, a.device, a.boxes)}))
        return
    extra = tuple(a.baselines) if a.boxes == "hbb" else ()
    columns = [f"{n.upper()} {what}" for n in extra for what in ("ms", "/TAL time", "peak MiB", "/TAL memory")]
    base_head = "| shape (b, px, M) | N | " + " | ".join(columns).replace(" /", "/") + " |"
    base_lines = [base_head, "|---|---:|" + "---:|" * 4 * len(extra)]

    head = ("| shape (b, px, M) | N | TAL ms | FSS ms | time FSS/TAL | TAL peak MiB | FSS peak MiB "
            "| memory FSS/TAL | target time / memory |")
    lines, misses = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"], []
    for shape in a.shapes:
        b, n, m, imgsz, _ = parse_shape(shape)
        print(f"{shape}: peak memory in subprocesses...", file=sys.stderr, flush=True)
        mem = {name: peak_mib(name, shape, a.device, a.boxes) for name in ("tal", "fss", *extra)}
        print(f"{shape}: timing...", file=sys.stderr, flush=True)
        ms = time_ms(shape, a.device, a.repeats, tuple(k for k, v in mem.items() if v is not None), a.boxes)
        cells = []
        for name in extra:  # the baselines' row: their time and memory, and the ratio to TAL's when TAL fitted
            if mem[name] is None:
                cells += ["did not fit", "-", "did not fit", "-"]
                continue
            t_ratio = f"{ms[name] / ms['tal']:.2f}x" if mem["tal"] is not None else "-"
            m_ratio = f"{mem[name] / max(mem['tal'], 1e-9):.2f}x" if mem["tal"] is not None else "-"
            cells += [f"{ms[name]:.1f}", t_ratio, f"{mem[name]:.1f}", m_ratio]
        base_lines.append(f"| {b}, {imgsz}, {m}{'@' + shape.split('@')[1] if '@' in shape else ''} | {n} | "
                          + " | ".join(cells) + " |")
        target = TARGETS["many"] if m >= MANY_GTS else TARGETS["few"]
        targets = OBB_TARGETS if a.boxes == "obb" else {"time": target, "memory": target}
        if mem["tal"] is None:  # TAL did not fit: say what it would need
            tal_ms, rt, tal_mem, rm = "did not fit", "-", f"> {dense_mib(shape):.0f} per (b,M,N) tensor", "-"
        else:
            rt, rm = ms["fss"] / ms["tal"], mem["fss"] / max(mem["tal"], 1e-9)
            tal_ms, tal_mem = f"{ms['tal']:.1f}", f"{mem['tal']:.1f}"
            misses += [f"{shape} {what} {r:.2f}x" for what, r in (("time", rt), ("memory", rm)) if r > targets[what]]
            rt, rm = f"{rt:.2f}x", f"{rm:.2f}x"
        lines.append(f"| {b}, {imgsz}, {m}{'@' + shape.split('@')[1] if '@' in shape else ''} | {n} | {tal_ms} | "
                     f"{ms['fss']:.1f} | {rt} | {tal_mem} | {mem['fss']:.1f} | {rm} | "
                     f"<= {targets['time']}x / {targets['memory']}x |")
    pair = ("RotatedTaskAlignedAssigner vs RotatedFSSAssigner" if a.boxes == "obb"
            else "TaskAlignedAssigner vs FSSAssigner")  # fmt: skip
    print(f"\n{pair} on {a.device}, median of {a.repeats} calls, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}\n")
    print("\n".join(lines))
    rule = (f"<= {OBB_TARGETS['time']}x time and <= {OBB_TARGETS['memory']}x memory at every shape"
            if a.boxes == "obb" else f"<= {TARGETS['many']}x from M = {MANY_GTS} on, <= {TARGETS['few']}x below")
    print(f"\nTargets (FSS/TAL): {rule}. " + (f"Exceeded: {'; '.join(misses)}." if misses else "All met."))
    if extra:
        print(f"\nThe paper's Table 5 baselines on the same inputs and calls ({', '.join(extra)}; no target):\n")
        print("\n".join(base_lines))


if __name__ == "__main__":
    main()
