"""Step 1 of FSS: the anchors strictly inside each GT box, as a dense (b, M, N) mask or listed directly in O(P).

Ultralytics' anchors come level by level in row-major order (`ultralytics.utils.tal.make_anchors`): anchor (i, j) of
level l, with stride s and a grid of h x w cells, sits at ((i + 0.5) s, (j + 0.5) s) and has index
offset_l + j w + i. The anchors strictly inside a GT box therefore form one rectangle of cells per level, whose
bounds follow from the box and the stride. We enumerate each rectangle widened by one cell on every side (a margin
for rounding), then keep the pairs that pass exactly the comparison of `TaskAlignedAssigner.select_candidates_in_gts`
(Ultralytics 8.4.190, ultralytics/utils/tal.py lines 328-359) on the same float values, so the result equals the
dense rule (`in_box_mask`, the same comparison on every (GT, anchor)) pair for pair, in the same (image, GT, anchor)
order. `strictly_inside` and `centre_region` are that comparison and YOLOX's centre square, shared with the
baselines (`assign.baselines`).

Host synchronisations (benchmarks/host_syncs.py): the listing makes two on CUDA, the size of the widened rectangles
and the number of pairs that pass the exact comparison; its constants are built on the device (`device_constant`).
"""

from __future__ import annotations

import itertools

import torch
from ultralytics.utils.ops import xywh2xyxy, xyxy2xywh

EPS = 1e-9  # the strict-inside margin of `TaskAlignedAssigner.select_candidates_in_gts`


def device_constant(values: list[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(len(values),) tensor of Python numbers made on `device` by fill kernels, the values `torch.tensor(values,
    dtype=dtype)` holds: `torch.tensor(values, device=...)` copies from pageable host memory, which on CUDA waits for
    the device (a host synchronisation)."""
    return torch.stack([torch.full((), v, dtype=dtype, device=device) for v in values])


def floor_small_sides(gt_bboxes: torch.Tensor, stride_val: float) -> torch.Tensor:
    """Enlarge sides shorter than `stride_val` to `stride_val` about the box centre, as TAL's candidate rule does.

    Args:
        gt_bboxes (torch.Tensor): (..., 4) xyxy boxes.
        stride_val (float): Smallest side.

    Returns:
        (torch.Tensor): (..., 4) xyxy boxes, a new tensor (the same float operations as Ultralytics', element-wise).
    """
    xywh = xyxy2xywh(gt_bboxes)
    xywh[..., 2:] = torch.where(xywh[..., 2:] < stride_val, stride_val, xywh[..., 2:])  # a Python scalar: no copy
    return xywh2xyxy(xywh)


def xyxy_centres(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 2) centres of (..., 4) xyxy boxes."""
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def strictly_inside(points: torch.Tensor, lt: torch.Tensor, rb: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Whether points lie inside boxes by more than `margin` from every side, one comparison per side and axis as in
    `TaskAlignedAssigner.select_candidates_in_gts` (so a NaN coordinate is never inside).

    Args:
        points (torch.Tensor): (..., 2) points.
        lt (torch.Tensor): (..., 2) left-top corners, broadcastable with `points`.
        rb (torch.Tensor): (..., 2) right-bottom corners, broadcastable with `points`.
        margin (float): `EPS` for TAL's in-box rule, 0 for YOLOX's strict `> 0.0`.

    Returns:
        (torch.Tensor): (...) bool, the broadcast shape without the last axis.
    """
    inside = (points[..., 0] - lt[..., 0]) > margin
    inside &= (points[..., 1] - lt[..., 1]) > margin
    inside &= (rb[..., 0] - points[..., 0]) > margin
    inside &= (rb[..., 1] - points[..., 1]) > margin
    return inside


def centre_region(centres: torch.Tensor, radius: float, strides: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOX SimOTA's centre region: the square of half-side `radius` strides about each box centre.

    Args:
        centres (torch.Tensor): (..., 2) box centres.
        radius (float): Half-side, in strides.
        strides (torch.Tensor): Stride of each square, broadcastable with (..., 1).

    Returns:
        (tuple[torch.Tensor, torch.Tensor]): Left-top and right-bottom corners, (..., 2) broadcast.
    """
    return centres - radius * strides, centres + radius * strides


def in_box_mask(anc_points: torch.Tensor, gt_bboxes: torch.Tensor, valid: torch.Tensor, stride_val: float):
    """Step 1 through the dense mask: TAL's in-box rule on every (GT, anchor), for when the grid is not known.

    Args:
        anc_points (torch.Tensor): (N, 2) anchor centres, pixels.
        gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels.
        valid (torch.Tensor): (b, M) bool, True for real GTs.
        stride_val (float): Smallest GT side of the in-box rule.

    Returns:
        (torch.Tensor): (b, M, N) bool, False on rows that are not valid.
    """
    lt, rb = floor_small_sides(gt_bboxes, stride_val)[:, :, None].chunk(2, -1)  # (b, M, 1, 2) each
    return strictly_inside(anc_points, lt, rb, EPS) & valid[..., None]


def in_box_pairs(
    anc_points: torch.Tensor,
    gt_bboxes: torch.Tensor,
    valid: torch.Tensor,
    strides: list[float],
    grid: list[tuple[int, int]],
    stride_val: float,
    radius: float = 0.0,
    grow: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (image, GT, anchor) pairs whose anchor centre lies strictly inside the GT box (sides floored to
    `stride_val`), for valid GTs only, listed by (image, GT, anchor): the nonzero entries of TAL's dense mask.

    With `radius` > 0, also the anchors whose centre lies strictly within `radius` strides of the GT centre (a square
    of half-side radius * stride on each level): the union of YOLOX SimOTA's in-box and in-centre regions. With
    `grow` > 0, the box is first grown by `grow` strides of each level on every side (the anchors whose virtual
    square anchor of half-side `grow` strides overlaps the box).

    Args:
        anc_points (torch.Tensor): (N, 2) anchor centres, pixels, level by level in row-major order.
        gt_bboxes (torch.Tensor): (b, M, 4) GT boxes, xyxy pixels.
        valid (torch.Tensor): (b, M) bool, True for real GTs.
        strides (list[float]): Stride of each level, L entries.
        grid (list[tuple[int, int]]): (height, width) in cells of each level, L entries; sum of h * w is N.
        stride_val (float): Smallest GT side of the in-box rule.
        radius (float): Centre-region half-side in strides; 0 for the in-box rule alone.
        grow (float): Growth of the box on every side, in strides of each level.

    Returns:
        (tuple[torch.Tensor, torch.Tensor, torch.Tensor]): (P,) int64 image, GT and anchor index of each pair.

    Raises:
        ValueError: If `strides` and `grid` disagree with each other or with the number of anchors.
    """
    n_levels = len(strides)
    sizes = [h * w for h, w in grid]
    if len(grid) != n_levels or sum(sizes) != anc_points.shape[0]:
        raise ValueError(f"grid {grid} with strides {strides} does not describe {anc_points.shape[0]} anchors")
    device = gt_bboxes.device
    b, m = valid.shape
    boxes = gt_bboxes.reshape(b * m, 4)  # (R,) every GT row, R = b*M; rows that are not valid get no cells below
    lt, rb = floor_small_sides(boxes, stride_val).chunk(2, -1)  # (R, 2) each
    s = device_constant(strides, lt.dtype, device).view(1, n_levels, 1)  # (1, L, 1)
    lt, rb = lt[:, None] - grow * s, rb[:, None] + grow * s  # (R, L, 2) in-box region of each level
    if radius > 0:  # (R, L, 2) the centre square of each level
        c_lt, c_rb = centre_region(xyxy_centres(boxes[:, None]), radius, s)
        region_lt, region_rb = torch.minimum(lt, c_lt), torch.maximum(rb, c_rb)
    else:
        region_lt, region_rb = lt, rb

    # Per (GT, level) cell: a rectangle of candidate cells [lo, hi), widened by one cell against rounding.
    wh = device_constant([v for h, w in grid for v in (w, h)], torch.long, device).view(1, n_levels, 2)
    lo = torch.floor(region_lt / s - 0.5).nan_to_num(0).clamp(-1, 2**30).long() - 1  # (R, L, 2)
    hi = torch.ceil(region_rb / s - 0.5).nan_to_num(0).clamp(-1, 2**30).long() + 2
    lo, hi = torch.minimum(lo.clamp(min=0), wh), torch.minimum(hi.clamp(min=0), wh)
    nx, ny = (hi - lo).clamp(min=0).unbind(-1)  # (R, L)
    counts = (nx * ny * valid.view(-1, 1)).view(-1)  # (R*L,) GT-major, then level: anchors ascend within each GT
    total = int(counts.sum())  # host sync 1 of 2: the number of cells, to size the listing
    cell = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts, output_size=total)  # (P',)
    k = torch.arange(cell.numel(), device=device) - (counts.cumsum(0) - counts)[cell]  # (P',) rank in its cell
    g, level = cell // n_levels, cell % n_levels
    nx_c = nx.view(-1)[cell]
    x = lo[..., 0].reshape(-1)[cell] + k % nx_c  # (P',) cell column
    y = lo[..., 1].reshape(-1)[cell] + k // nx_c  # (P',) cell row
    offsets = device_constant(list(itertools.accumulate([0, *sizes[:-1]])), torch.long, device)  # (L,) first anchors
    ai = offsets[level] + y * wh[0, level, 0] + x  # (P',)

    # The exact comparison of the dense rule, on the same float values.
    xy = anc_points[ai]  # (P', 2)
    inside = strictly_inside(xy, lt[g, level], rb[g, level], EPS)  # (P',)
    if radius > 0:
        inside |= strictly_inside(xy, c_lt[g, level], c_rb[g, level])
    keep = inside.nonzero().squeeze(1)  # host sync 2 of 2: the pairs that pass
    g = g[keep]
    return g // m, g % m, ai[keep]
