"""Pictures of an assignment (the paper's Figs. 2-4): FSS beside Ultralytics' TAL, and the maps behind FSS's choice.

Layout: the top row shows the image twice, zoomed on the drawn GTs: FSS's positives on the left (a disc per
positive, its area proportional to the Eq. (8) weight; a star on each GT's potentially optimal sample; k in the GT's
label) and TAL's on the right, in one colour per GT. Below, one row per GT: its class-score, IoU and Gaussian-prior
maps over its candidate anchors, merged at image resolution (each anchor paints its stride x stride cell, finer
levels over coarser ones), cropped around the GT, each panel coloured from 0 to its own maximum (its colour bar).
Drawn with matplotlib under Ultralytics' `plt_settings` (Agg, its font setup: no download) and its `colors` palette.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from ultralytics.utils import plt_settings
from ultralytics.utils.plotting import colors

from ultralytics_fss.evidence.assignment_view import AssignmentView, GTView

MAPS = (("p", "class score p"), ("ious", "IoU"), ("prior", "Gaussian prior g"))
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
    _add_legend(fig)
    for row, (gt, window) in enumerate(zip(view.gts, windows), start=1):
        _draw_map_row(fig, grid, row, view, gt, window)
    _add_title(fig, view, title)
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) uint8 RGB
    if save is not None:
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
    """Outline every drawn GT box on `ax` in its colour."""
    import matplotlib.patches as patches

    for n, gt in enumerate(view.gts):
        x1, y1, x2, y2 = gt.box
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5, ec=gt_colour(n)))


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
    ax.set_title("TAL (Ultralytics)" if tal else "FSS" if view.assigner == "fss" else view.assigner, fontsize=12)
    ax.axis("off")


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
    ax.text(x1, y2 + 2 if below else y1 - 2, text, color="white", fontsize=8, va="top" if below else "bottom",
            bbox=dict(facecolor=colour, edgecolor="none", pad=1, alpha=0.85))  # fmt: skip


def _add_legend(fig) -> None:
    """The marker legend under the title: positive discs and the potentially optimal sample's star."""
    from matplotlib.lines import Line2D

    legend = [
        Line2D([], [], ls="", marker="o", mfc="gray", mec="white", ms=8, label="positive (FSS: area ~ Eq. 8 weight)"),
        Line2D([], [], ls="", marker="*", mfc="gray", mec="black", ms=12, label="potentially optimal sample (Eq. 2)"),
    ]
    fig.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.9 / fig.get_figheight()), ncol=2,
               fontsize=9, frameon=False)  # fmt: skip


def _draw_map_row(fig, grid, row: int, view: AssignmentView, gt: GTView, window: tuple[int, int, int, int]) -> None:
    """Row `row` of `grid`: the GT's class-score, IoU and prior maps (`MAPS`; baselines have no prior) over the
    greyscale image cropped to `window` (xyxy), each with the GT box, its star and its FSS positives."""
    x1, y1, x2, y2 = window
    colour = gt_colour(row - 1)
    for col, (key, name) in enumerate(MAPS):
        ax = fig.add_subplot(grid[row, col])
        mapped = key != "prior" or view.assigner == "fss"  # the baselines have no Eq. (6) prior
        ax.imshow(view.image[y1:y2, x1:x2].mean(-1), cmap="gray", vmin=0, vmax=255, extent=(x1, x2, y2, y1))
        if mapped:
            _overlay_map(fig, ax, cell_map(gt, getattr(gt, key), view.image.shape[:2])[y1:y2, x1:x2], window)
        _mark_gt(ax, gt, colour)
        label = name if mapped else f"(no prior: {view.assigner})"
        _frame(ax, window, f"{_label(view, gt)}, {label}" if col == 0 else label)


def _overlay_map(fig, ax, values: np.ndarray, window: tuple[int, int, int, int]) -> None:
    """Show the (h, w) `values` (NaN: no candidate) over `window` (xyxy) in viridis from 0 to their maximum (at
    least 1e-3), with a colour bar."""
    x1, y1, x2, y2 = window
    vmax = max(float(np.nanmax(values)) if np.isfinite(values).any() else 0.0, 1e-3)
    im = ax.imshow(values, cmap="viridis", vmin=0, vmax=vmax, alpha=0.75, extent=(x1, x2, y2, y1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)


def _mark_gt(ax, gt: GTView, colour: np.ndarray) -> None:
    """The GT box outline, its potentially optimal sample's star, and white rings on its FSS positives."""
    bx1, by1, bx2, by2 = gt.box
    ax.plot([bx1, bx2, bx2, bx1, bx1], [by1, by1, by2, by2, by1], color=colour, lw=1.5)
    if gt.best >= 0:
        ax.scatter(*gt.anchors[gt.best], s=90, marker="*", color=colour, edgecolors="black", linewidths=0.6)
    if len(gt.fss_pos):
        ax.scatter(gt.anchors[gt.fss_pos, 0], gt.anchors[gt.fss_pos, 1], s=14, facecolors="none",
                   edgecolors="white", linewidths=0.8)  # fmt: skip


def _frame(ax, window: tuple[int, int, int, int], title: str) -> None:
    """Show exactly `window` (xyxy, y down), no ticks, a small `title`."""
    x1, y1, x2, y2 = window
    ax.set_xlim(x1, x2)
    ax.set_ylim(y2, y1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _add_title(fig, view: AssignmentView, title: str) -> None:
    """`title`, how many GTs are drawn, and the `fss_*` values the assigner ran with (six per line)."""
    shown = [f"{k[4:]}={v}" for k, v in view.fss.items() if k not in {"fss_o2o", "fss_plot_assign", "fss_coco"}]
    fss = ", ".join(shown[:6]) + "\n" + ", ".join(shown[6:])
    fig.suptitle(f"{title}; {len(view.gts)} of {view.num_gts} GTs\nfss: {fss}", fontsize=10)


def read_labels(source: Path, labels: str | Path | None = None) -> np.ndarray:
    """YOLO labels (n, 5) of an image: from `labels`, else from the label file Ultralytics pairs with the image
    (`images/` -> `labels/`, `.txt`: `ultralytics.data.utils.img2label_paths`).

    Raises:
        FileNotFoundError: If no label file is given or found (names the path looked at).
        ValueError: If a row is not `class cx cy w h` (names the file and line).
    """
    from ultralytics.data.utils import img2label_paths

    path = Path(labels) if labels is not None else Path(img2label_paths([str(source)])[0])
    if not path.is_file():
        how = "given" if labels is not None else f"paired with {source} the Ultralytics way"
        raise FileNotFoundError(f"label file {path} ({how}) not found; pass --labels")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in line.split()]
        except ValueError:
            row = []
        if len(row) != 5:
            raise ValueError(f"{path}:{n}: expected 'class cx cy w h' (YOLO detect label), got {line.strip()!r}")
        rows.append(row)
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


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
    """Draw FSS's and TAL's assignment of one image's ground truths under `model`'s predictions.

    Args:
        model (str | Path | ultralytics.YOLO | DetectionModel): Weights (`best.pt`), a model YAML, or a model.
        source (str | Path): Image file.
        labels (str | Path, optional): Its YOLO label file; found the Ultralytics way when None.
        imgsz (int): Input size.
        num_gts (int): Ground truths drawn.
        order (str): `largest` or `crowded` (most overlapped) ground truths first.
        out (str | Path, optional): Also save the picture here.
        device (str, optional): Run the model there (`cpu`, `0`, ...); default: where it is.
        **fss: `fss_*` values (default: the model's training args, else the package defaults).

    Returns:
        (np.ndarray): (H, W, 3) uint8 RGB picture.
    """
    from ultralytics import YOLO

    from ultralytics_fss.evidence.assignment_view import assignment_view

    name = "/".join(Path(str(model)).parts[-3:]) if isinstance(model, (str, Path)) else type(model).__name__
    if isinstance(model, (str, Path)):
        model = YOLO(model)
    model = getattr(model, "model", model)  # a YOLO wrapper holds the DetectionModel
    if device is not None:
        from ultralytics.utils.torch_utils import select_device

        model = model.to(select_device(device, verbose=False))
    source = Path(source)
    image = cv2.imread(str(source))
    if image is None:
        raise FileNotFoundError(f"cannot read image {source}")
    view = assignment_view(model, image, read_labels(source, labels), imgsz, num_gts, order, **fss)
    return plot_assignment(view, title=f"{name} on {source.name} ({imgsz} px)", save=out)


class AssignmentPictures:
    """`on_fit_epoch_end` callback of the `fss_plot_assign=n` training option: every n epochs and after the last,
    draw the assignment of the first training image under the EMA model into `save_dir/assign_epoch{epoch}.png`; the
    last picture is registered with `trainer.on_plot` beside Ultralytics' own plots. Main process only.
    """

    def __init__(self, every: int):
        """Draw every `every` epochs (>= 1)."""
        self.every = every
        self.drawn: set[int] = set()

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

        epoch = min(trainer.epoch + 1, trainer.epochs)  # the final validation runs these callbacks once more
        last = epoch >= trainer.epochs or trainer.stop
        if RANK not in {-1, 0} or epoch in self.drawn or (epoch % self.every and not last):
            return
        self.drawn.add(epoch)
        dataset = trainer.train_loader.dataset
        image_file, label = dataset.im_files[0], dataset.labels[0]
        labels = np.concatenate([label["cls"].reshape(-1, 1), label["bboxes"].reshape(-1, 4)], 1)  # normalised xywh
        image = cv2.imread(image_file)
        model = trainer.ema.ema if trainer.ema else unwrap_model(trainer.model)
        view = assignment_view(model, image, labels, imgsz=trainer.args.imgsz)
        path = Path(trainer.save_dir) / f"assign_epoch{epoch}.png"
        plot_assignment(view, title=f"epoch {epoch}, EMA model on {Path(image_file).name}", save=path)
        if last:
            trainer.on_plot(path)
