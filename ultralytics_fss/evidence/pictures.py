"""Pictures of an assignment (the paper's Figs. 2-4): FSS beside Ultralytics' TAL, and the maps behind FSS's choice.

Layout: the top row shows the image twice, zoomed on the drawn GTs: FSS's positives on the left (a disc per
positive, its area proportional to the Eq. (8) weight; a star on each GT's potentially optimal sample; k in the GT's
label) and the positives of Ultralytics' assigner of the task on the right, in one colour per GT. Below, one row per
GT: its class-score, IoU and Gaussian-prior maps over its candidate anchors, merged at image resolution (each anchor
paints its stride x stride cell, finer levels over coarser ones), cropped around the GT, each panel coloured from 0
to its own maximum (its colour bar). Every task FSS trains is drawn: a rotated GT as its polygon with its candidate
region dashed (the rotated box, sides floored as step 1 floors them), a segment's outline dotted and a pose's
keypoints as diamonds on their GT (both assigned through their boxes). Drawn with matplotlib under Ultralytics'
`plt_settings` (Agg, its font setup: no download) and its `colors` palette.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from ultralytics.utils import LOGGER, colorstr, plt_settings
from ultralytics.utils.plotting import colors

from ultralytics_fss.evidence.assignment_view import AssignmentView, GTView

MAPS = (("p", "class score p"), ("ious", "IoU"), ("prior", "Gaussian prior g"))
PRIORS = {"fss": "Gaussian prior g", "dw": "centre prior (DW)"}  # assigners with a prior map, and its title
STOCK_TITLES = {  # the right-hand panel, by Ultralytics' assigner class
    "TaskAlignedAssigner": "TAL (Ultralytics)",
    "RotatedTaskAlignedAssigner": "RotatedTaskAlignedAssigner (Ultralytics)",
    "SegTaskAlignedAssigner": "TAL, mask-aware (Ultralytics)",
    "PoseTaskAlignedAssigner": "TAL, OKS (Ultralytics)",
}
PREFIX = colorstr("visualize: ")
PALETTE = (0, 6, 7, 9, 1, 18, 5, 13, 4, 17)  # Ultralytics' colours in a contrasting order, without near-white ones


def gt_colour(n: int) -> np.ndarray:
    """RGB in [0, 1] of the n-th drawn GT (or plotted variant)."""
    return np.array(colors(PALETTE[n % len(PALETTE)])) / 255


def cell_map(gt: GTView, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Paint each candidate's stride x stride cell with its value (coarse levels first); NaN where no candidate."""
    out = np.full(shape, np.nan, dtype=np.float32)
    for i in np.argsort(-gt.strides, kind="stable"):
        (x, y), half = gt.anchors[i], gt.strides[i] / 2
        x1, y1 = max(int(round(x - half)), 0), max(int(round(y - half)), 0)
        out[y1 : int(round(y + half)), x1 : int(round(x + half))] = values[i]
    return out


def crop_box(gt: GTView, shape: tuple[int, int], margin: float = 1.0) -> tuple[int, int, int, int]:
    """A square window around the GT, its side the GT's larger side (at least 32 px) widened by `margin` of it;
    (x1, y1, x2, y2) clipped to the image. Candidates far from the GT (ATSS's coarse levels) may fall outside."""
    lo, hi = gt.box[:2], gt.box[2:]
    side = max(float((hi - lo).max()), 32.0) * (1 + margin)
    c = (lo + hi) / 2
    x1, y1 = np.clip(c - side / 2, 0, None).astype(int)
    return x1, y1, min(int(x1 + side), shape[1]), min(int(y1 + side), shape[0])


@plt_settings()
def plot_assignment(view: AssignmentView, title: str = "", save: str | Path | None = None) -> np.ndarray:
    """Draw `view` (see the module docstring); return the picture as an (H, W, 3) uint8 RGB array.

    Args:
        view (AssignmentView): From `ultralytics_fss.evidence.assignment_view.assignment_view`.
        title (str): First title line (model and image); the `fss_*` values are appended.
        save (str | Path, optional): Also write the picture here (PNG).
    """
    import matplotlib.pyplot as plt

    fig, grid = _new_figure(len(view.gts))
    windows = [crop_box(gt, view.image.shape[:2]) for gt in view.gts]  # one window per GT, margin 1
    zoom = _union(windows)  # the top row zooms on the drawn GTs
    top = grid[0, :].subgridspec(1, 2, wspace=0.05)
    _draw_positives_panel(fig.add_subplot(top[0, 0]), view, zoom, tal=False)
    _draw_positives_panel(fig.add_subplot(top[0, 1]), view, zoom, tal=True)
    _add_legend(fig, view)
    for row, (gt, window) in enumerate(zip(view.gts, windows), start=1):
        _draw_map_row(fig, grid, row, view, gt, window)
    _add_title(fig, view, title)
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) uint8 RGB
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=100)
    plt.close(fig)
    return picture


def _new_figure(n: int):
    """A figure for `n` GTs and its (1 + n, 3) grid: a tall top row for the two assigners, a row of maps per GT.

    Returns:
        fig (matplotlib.figure.Figure): 1200 px wide at 100 dpi, its height growing with `n`.
        grid (matplotlib.gridspec.GridSpec): (1 + n, 3) cells.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6 + 2.6 * n), dpi=100)
    return fig, fig.add_gridspec(1 + n, 3, height_ratios=[2.4] + [1] * n, hspace=0.35, wspace=0.15)


def _union(windows: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The (x1, y1, x2, y2) box that holds all xyxy `windows` (one or more)."""
    w = np.array(windows)  # (n, 4)
    (x1, y1), (x2, y2) = w[:, :2].min(0), w[:, 2:].max(0)
    return x1, y1, x2, y2


def _label(view: AssignmentView, gt: GTView) -> str:
    """`GT <row>: <class name>`."""
    return f"GT {gt.index}: {view.names.get(gt.cls, gt.cls)}"


def _draw_boxes(ax, view: AssignmentView) -> None:
    """Outline every drawn GT on `ax` in its colour: its box (a rotated one as a polygon, its candidate region
    dashed), and a segment's outline or a pose's keypoints."""
    import matplotlib.patches as patches

    for n, gt in enumerate(view.gts):
        colour = gt_colour(n)
        if gt.outline is None:
            x1, y1, x2, y2 = gt.box
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5, ec=colour))
        else:
            ax.add_patch(patches.Polygon(gt.outline, closed=True, fill=False, lw=1.5, ec=colour))
        _draw_shape(ax, gt, colour)


def _draw_shape(ax, gt: GTView, colour: np.ndarray) -> None:
    """What a GT has besides its box: the dashed candidate region of a rotated box, a segment's dotted outline, a
    pose's labelled keypoints (visible ones) as diamonds."""
    if gt.region is not None:
        ax.plot(*np.vstack([gt.region, gt.region[:1]]).T, color=colour, lw=1.0, ls="--")
    if gt.polygon is not None:
        ax.plot(*np.vstack([gt.polygon, gt.polygon[:1]]).T, color=colour, lw=1.2, ls=":")
    if gt.keypoints is not None:
        shown = gt.keypoints[gt.keypoints[:, 2] > 0] if gt.keypoints.shape[1] == 3 else gt.keypoints
        ax.scatter(
            shown[:, 0], shown[:, 1], s=22, marker="D", color=colour, edgecolors="black", linewidths=0.6, zorder=4
        )


def _draw_positives_panel(ax, view: AssignmentView, zoom: tuple[int, int, int, int], tal: bool) -> None:
    """One panel of the top row: the image zoomed on `zoom` (xyxy), the GT boxes, and for each GT its positives and
    a label with their count: TAL's (`tal`), else those of `view.assigner` (FSS: sized by weight, star, k)."""
    x1, y1, x2, y2 = zoom
    ax.imshow(view.image)
    ax.set_xlim(x1, x2)
    ax.set_ylim(y2, y1)
    _draw_boxes(ax, view)
    for n, gt in enumerate(view.gts):
        colour = gt_colour(n)
        if tal:
            _scatter_positives(ax, gt.tal_pos, 60, colour)
            count = f"{len(gt.tal_pos)} pos"
        else:
            _scatter_positives(ax, gt.anchors[gt.fss_pos], 60 * gt.fss_weights, colour)
            if gt.best >= 0:
                bx, by = gt.anchors[gt.best]
                ax.scatter([bx], [by], s=140, marker="*", color=colour, edgecolors="black", linewidths=0.6, zorder=4)
            count = _count(view, gt)
        _label_box(ax, gt, f"{gt.index}: {count}", colour, view.image.shape[0])
    ax.set_title(_panel_title(view, tal), fontsize=12)
    ax.axis("off")


def _panel_title(view: AssignmentView, tal: bool) -> str:
    """Ultralytics' assigner by name (`STOCK_TITLES`), or `FSS` (a baseline by name), saying when rotated or when
    Eq. (3) scored a task overlap."""
    if tal:
        return STOCK_TITLES.get(view.stock, f"{view.stock} (Ultralytics)")
    name = "FSS" if view.assigner == "fss" else view.assigner
    if view.task == "obb":
        return f"{name} (rotated)"
    return f"{name} (Eq. 3 on {view.overlap})" if view.overlap != "IoU" else name


def _scatter_positives(ax, xy: np.ndarray, sizes: float | np.ndarray, colour: np.ndarray) -> None:
    """Discs with a white rim on the (F, 2) anchor centres `xy`, of area `sizes` (scalar or (F,)) in points^2."""
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes, color=colour, edgecolors="white", linewidths=0.6, zorder=3)


def _count(view: AssignmentView, gt: GTView) -> str:
    """`<F> pos`, preceded by `k=<k>, ` for the assigners with a dynamic k (FSS, SimOTA)."""
    count = f"{len(gt.fss_pos)} pos"
    return f"k={gt.k}, {count}" if view.assigner in {"fss", "simota"} else count


def _label_box(ax, gt: GTView, text: str, colour: np.ndarray, height: int) -> None:
    """Write `text` on a `colour` tag at the GT box's top left corner, or below the box when it touches the top
    tenth of the `height` px image (no room above)."""
    x1, y1, _, y2 = gt.box
    below = y1 < 0.1 * height
    ax.text(
        x1,
        y2 + 2 if below else y1 - 2,
        text,
        color="white",
        fontsize=8,
        va="top" if below else "bottom",
        bbox=dict(facecolor=colour, edgecolor="none", pad=1, alpha=0.85),
    )


def _add_legend(fig, view: AssignmentView) -> None:
    """The marker legend under the title: positive discs, the potentially optimal sample's star, and what the task
    draws on its GTs (candidate region, outline, keypoints)."""
    from matplotlib.lines import Line2D

    legend = [
        Line2D([], [], ls="", marker="o", mfc="gray", mec="white", ms=8, label="positive (FSS: area ~ Eq. 8 weight)"),
        Line2D([], [], ls="", marker="*", mfc="gray", mec="black", ms=12, label="potentially optimal sample (Eq. 2)"),
    ]
    if view.task == "obb":
        legend.append(Line2D([], [], color="gray", ls="--", label="candidate region (short sides floored)"))
    if view.task == "segment":
        legend.append(Line2D([], [], color="gray", ls=":", lw=1.2, label="mask outline (label)"))
    if view.task == "pose":
        legend.append(Line2D([], [], ls="", marker="D", mfc="gray", mec="black", ms=5, label="keypoints (label)"))
    fig.legend(
        handles=legend,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.9 / fig.get_figheight()),
        ncol=len(legend),
        fontsize=9,
        frameon=False,
    )


def _draw_map_row(fig, grid, row: int, view: AssignmentView, gt: GTView, window: tuple[int, int, int, int]) -> None:
    """Row `row` of `grid`: the GT's class-score, IoU and prior maps (`MAPS`; `PRIORS` have a prior) over the
    greyscale image cropped to `window` (xyxy), each with the GT (`_mark_gt`), its star and its FSS positives."""
    x1, y1, x2, y2 = window
    colour = gt_colour(row - 1)
    for col, (key, name) in enumerate(MAPS):
        ax = fig.add_subplot(grid[row, col])
        mapped = key != "prior" or view.assigner in PRIORS  # the other baselines have no prior
        ax.imshow(view.image[y1:y2, x1:x2].mean(-1), cmap="gray", vmin=0, vmax=255, extent=(x1, x2, y2, y1))
        if mapped:
            _overlay_map(fig, ax, cell_map(gt, getattr(gt, key), view.image.shape[:2])[y1:y2, x1:x2], window)
        _mark_gt(ax, gt, colour)
        name = PRIORS.get(view.assigner, name) if key == "prior" else name
        label = _map_name(view, key, name) if mapped else f"(no prior: {view.assigner})"
        _frame(ax, window, f"{_label(view, gt)}, {label}" if col == 0 else label)


def _map_name(view: AssignmentView, key: str, name: str) -> str:
    """The title of the `key` map: `name`, the IoU map saying what it holds (probiou for rotated boxes) and what Eq. (3)
    scored when that was a task overlap (OKS, mask IoU) rather than this IoU."""
    if key != "ious":
        return name
    if view.task == "obb":
        return "probiou"
    return name if view.overlap == "IoU" else f"box IoU (s: {view.overlap})"


def _overlay_map(fig, ax, values: np.ndarray, window: tuple[int, int, int, int]) -> None:
    """Show the (h, w) `values` (NaN: no candidate) over `window` (xyxy) in viridis from 0 to their maximum (at
    least 1e-3), with a colour bar."""
    x1, y1, x2, y2 = window
    vmax = max(float(np.nanmax(values)) if np.isfinite(values).any() else 0.0, 1e-3)
    im = ax.imshow(values, cmap="viridis", vmin=0, vmax=vmax, alpha=0.75, extent=(x1, x2, y2, y1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)


def _mark_gt(ax, gt: GTView, colour: np.ndarray) -> None:
    """The GT box outline (and `_draw_shape`), its potentially optimal sample's star, and white rings on its FSS
    positives."""
    if gt.outline is None:
        bx1, by1, bx2, by2 = gt.box
        ax.plot([bx1, bx2, bx2, bx1, bx1], [by1, by1, by2, by2, by1], color=colour, lw=1.5)
    else:
        ax.plot(*np.vstack([gt.outline, gt.outline[:1]]).T, color=colour, lw=1.5)
    _draw_shape(ax, gt, colour)
    if gt.best >= 0:
        ax.scatter(*gt.anchors[gt.best], s=90, marker="*", color=colour, edgecolors="black", linewidths=0.6)
    if len(gt.fss_pos):
        ax.scatter(
            gt.anchors[gt.fss_pos, 0],
            gt.anchors[gt.fss_pos, 1],
            s=14,
            facecolors="none",
            edgecolors="white",
            linewidths=0.8,
        )


def _frame(ax, window: tuple[int, int, int, int], title: str) -> None:
    """Show exactly `window` (xyxy, y down), no ticks, a small `title`."""
    x1, y1, x2, y2 = window
    ax.set_xlim(x1, x2)
    ax.set_ylim(y2, y1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _add_title(fig, view: AssignmentView, title: str) -> None:
    """The picture's title: `picture_title`."""
    fig.suptitle(picture_title(view, title), fontsize=10)


def picture_title(view: AssignmentView, title: str) -> str:
    """`title`, how many GTs are drawn, the `fss_*` values the assigner ran with (six per line) and where they come
    from (`AssignmentView.settings`)."""
    shown = [f"{k[4:]}={v}" for k, v in view.fss.items() if k not in {"fss_o2o", "fss_plot_assign", "fss_coco"}]
    fss = ", ".join(shown[:6]) + "\n" + ", ".join(shown[6:])
    return f"{title}; {len(view.gts)} of {view.num_gts} GTs\nfss: {fss}\nvalues: {view.settings}"


def label_file(source: Path, labels: str | Path | None = None) -> Path:
    """The label file of an image: `labels`, else the one Ultralytics pairs with it (`images/` -> `labels/`, `.txt`:
    `ultralytics.data.utils.img2label_paths`).

    Raises:
        FileNotFoundError: If it does not exist (names the path looked at).
    """
    from ultralytics.data.utils import img2label_paths

    path = Path(labels) if labels is not None else Path(img2label_paths([str(source)])[0])
    if not path.is_file():
        how = "given" if labels is not None else f"paired with {source} the Ultralytics way"
        raise FileNotFoundError(f"label file {path} ({how}) not found; pass --labels")
    return path


def load_model(model):
    """The Ultralytics model (`DetectionModel`, `OBBModel`, ...) of weights, a model YAML, a `YOLO` or the model itself.

    Raises:
        FileNotFoundError: If `model` names a file that does not exist.
    """
    from ultralytics import YOLO
    from ultralytics.engine.model import Model

    if isinstance(model, (str, Path)):
        if Path(model).suffix == ".pt" and not Path(model).is_file():
            raise FileNotFoundError(f"model weights {model} not found")
        model = YOLO(model)
    return model.model if isinstance(model, Model) else model  # a YOLO wrapper holds the model


def visualize_assignment(
    model,
    source: str | Path,
    labels: str | Path | None = None,
    imgsz: int = 640,
    num_gts: int = 4,
    order: str = "largest",
    out: str | Path | None = None,
    device: str | None = None,
    **fss,
) -> np.ndarray:
    """Draw FSS's and Ultralytics' assignment of one image's ground truths under `model`'s predictions.

    Args:
        model (str | Path | ultralytics.YOLO | DetectionModel): Weights (`best.pt`), a model YAML, or a model of any
            task FSS trains (detect, obb, segment, pose).
        source (str | Path): Image file.
        labels (str | Path, optional): Its YOLO label file, in the model's task's format (obb: the 4 corners); found
            the Ultralytics way when None.
        imgsz (int): Input size.
        num_gts (int): Ground truths drawn.
        order (str): `largest` or `crowded` (most overlapped) ground truths first.
        out (str | Path, optional): Also save the picture here.
        device (str, optional): Run the model there (`cpu`, `0`, ...); default: where it is.
        **fss (Any): `fss_*` values (default: the model's training args, else the package defaults).

    Returns:
        (np.ndarray): (H, W, 3) uint8 RGB picture.

    Raises:
        FileNotFoundError: For a missing model, image or label file.
        ValueError: For labels that do not fit the model's task, and what `assignment_view` refuses.
    """
    from ultralytics_fss.evidence.assignment_view import assignment_view
    from ultralytics_fss.evidence.gt_labels import read_labels
    from ultralytics_fss.train.seam import model_task

    name = "/".join(Path(str(model)).parts[-3:]) if isinstance(model, (str, Path)) else type(model).__name__
    model = load_model(model)
    if device is not None:
        from ultralytics.utils.torch_utils import select_device

        model = model.to(select_device(device, verbose=False))
    source = Path(source)
    image = cv2.imread(str(source))
    if image is None:
        raise FileNotFoundError(f"cannot read image {source}")
    gt = read_labels(label_file(source, labels), model_task(model), getattr(model, "kpt_shape", None))
    view = assignment_view(model, image, gt, imgsz, num_gts, order, **fss)
    shown = ", ".join(f"{k}={v}" for k, v in view.fss.items() if k not in {"fss_plot_assign", "fss_coco"})
    log = LOGGER.warning if view.settings.startswith("the package defaults") else LOGGER.info
    log(f"{PREFIX}drawing {shown}; values: {view.settings}")
    return plot_assignment(view, title=f"{name} on {source.name} ({imgsz} px)", save=out)


class AssignmentPictures:
    """`on_fit_epoch_end` callback of the `fss_plot_assign=n` training option: every n epochs and after the last,
    draw the assignment of the first training image with labels under the EMA model into
    `save_dir/assign_epoch{epoch}.png`; the last picture is registered with `trainer.on_plot` beside Ultralytics' own
    plots. Main process only; every task FSS trains.
    """

    def __init__(self, every: int):
        """Draw every `every` epochs (>= 1)."""
        self.every = every
        self.drawn: set[int] = set()
        self.latest: tuple[int, AssignmentView] | None = None  # the last picture's epoch and what it shows

    def add_to(self, trainer) -> None:
        """Register once on `trainer`."""
        event = trainer.callbacks["on_fit_epoch_end"]
        event[:] = [f for f in event if not isinstance(f, AssignmentPictures)]
        trainer.add_callback("on_fit_epoch_end", self)

    def __call__(self, trainer) -> None:
        """Draw this epoch's picture when it is due."""
        from ultralytics.utils import RANK
        from ultralytics.utils.torch_utils import unwrap_model

        from ultralytics_fss.evidence.assignment_view import assignment_view
        from ultralytics_fss.evidence.gt_labels import from_dataset_label
        from ultralytics_fss.train.seam import model_task

        epoch = min(trainer.epoch + 1, trainer.epochs)  # the final validation runs these callbacks once more
        last = epoch >= trainer.epochs or trainer.stop
        if RANK not in {-1, 0} or epoch in self.drawn or (epoch % self.every and not last):
            return
        dataset = trainer.train_loader.dataset
        i = next((i for i, label in enumerate(dataset.labels) if len(label["cls"])), None)
        if i is None:
            return  # no training image has a label: nothing to assign
        model = trainer.ema.ema if trainer.ema else unwrap_model(trainer.model)
        labels = from_dataset_label(dataset.labels[i], model_task(model))  # normalised, as in the label file
        view = assignment_view(
            model, cv2.imread(dataset.im_files[i]), labels, imgsz=trainer.args.imgsz
        )
        self.drawn.add(epoch)
        self.latest = epoch, view  # one view kept, not one per epoch
        path = Path(trainer.save_dir) / f"assign_epoch{epoch}.png"
        plot_assignment(view, title=f"epoch {epoch}, EMA model on {Path(dataset.im_files[i]).name}", save=path)
        if last:
            trainer.on_plot(path)
