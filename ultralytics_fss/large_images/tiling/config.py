"""The tiler's output options and their defaults, defined once: :func:`tile_dota` and the CLI take theirs from here."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TilingError

LABEL_FORMATS = ("detect", "obb")  # what a label row holds: xywh, or four corners ("both" writes these two)
FORMATS = (*LABEL_FORMATS, "segment", "both")  # --format: one label format (segment: polygons), or both
KEEP_DROP = ("keep", "drop")  # what to do with difficult objects and with tiles without objects
EXTS = ("png", "jpg")  # tile formats; None (the default) keeps each source's own
PAPER_CROP, PAPER_STRIDE = 1024, 800  # FSS paper, section 4.1: the default pair; other crops keep its overlap share


def default_stride(crop: int) -> int:
    """The stride used when none is given: the paper's 800 / 1024 of the crop, rounded half up (at least 1).

    So ``--crop`` alone keeps the paper's overlap share (21.9% of the tile): 1024 -> 800, 512 -> 400, 256 -> 200.

    Examples:
        >>> default_stride(1024), default_stride(512), default_stride(640), default_stride(1)
        (800, 400, 500, 1)
    """
    return max(1, (crop * PAPER_STRIDE + PAPER_CROP // 2) // PAPER_CROP)


STRIDE_HELP = f"crop x {PAPER_STRIDE}/{PAPER_CROP}: {PAPER_STRIDE} for crop {PAPER_CROP}, {default_stride(512)} for 512"


@dataclass(frozen=True)
class TileConfig:
    """Options that decide the output (recorded in ``DST/.tile_dota/options.json``; a restart must match them).

    The field defaults are the tiler's defaults (the FSS paper's 1024 x 1024 patches every 800 px). Constructing a
    config validates it, so a :class:`TileConfig` in hand is always usable.

    Attributes:
        crop (int): Tile side, pixels.
        stride (int): Step between windows, pixels, ``0 < stride <= crop``; None (the default) becomes
            :func:`default_stride` of ``crop`` on construction (800 for 1024).
        rates (tuple[float, ...]): Image scale factors, distinct and positive.
        iof (float): Minimum intersection over foreground to keep an object in a tile, in [0, 1].
        format (str): ``detect``, ``obb`` or ``both``.
        names (tuple[str, ...]): Category tokens in class order.
        difficult (str): ``keep`` or ``drop`` objects flagged difficult.
        empty (str): ``keep`` or ``drop`` tiles without objects (splits with labels only).
        ext (str | None): ``png``/``jpg`` for all tiles; None: each source's own (JPEG stays JPEG, others PNG).
        keep_16bit (bool): Write 16-bit sources as 16-bit PNG instead of converting to 8-bit.
        jpeg_quality (int): JPEG quality (95: OpenCV's default, what Ultralytics' split_dota writes).

    Raises:
        TilingError: On construction, naming every impossible value (never ``assert``).

    Examples:
        >>> TileConfig().crop, TileConfig().stride, TileConfig(crop=512).stride, TileConfig(format="both").formats()
        (1024, 800, 400, ('detect', 'obb'))
    """

    crop: int = PAPER_CROP
    stride: int | None = None  # default_stride(crop)
    rates: tuple[float, ...] = (1.0,)
    iof: float = 0.7
    format: str = "detect"
    names: tuple[str, ...] = ()
    difficult: str = "keep"
    empty: str = "keep"
    ext: str | None = None
    keep_16bit: bool = False
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        """Reject impossible option values with one message listing them all."""
        problems = []
        if not (isinstance(self.crop, int) and self.crop > 0):
            problems.append(f"crop must be a positive integer, got {self.crop!r}")
        elif self.stride is None:
            object.__setattr__(self, "stride", default_stride(self.crop))  # frozen: set once, here
        elif not (isinstance(self.stride, int) and 0 < self.stride <= self.crop):
            problems.append(
                f"stride must be an integer in 1..crop ({self.crop}), got {self.stride!r} (leave it out "
                f"for {default_stride(self.crop)}, the default for this crop)"
            )
        if not self.rates or any(not r > 0 for r in self.rates) or len(set(self.rates)) != len(self.rates):
            problems.append(f"rates must be distinct positive numbers, got {list(self.rates)}")
        if not 0 <= self.iof <= 1:
            problems.append(f"iof must be in [0, 1], got {self.iof}")
        choices_of = {"format": FORMATS, "difficult": KEEP_DROP, "empty": KEEP_DROP, "ext": (None, *EXTS)}
        for name, choices in choices_of.items():
            value = getattr(self, name)
            if value not in choices:
                problems.append(f"{name} must be one of {choices}, got {value!r}")
        if self.keep_16bit and self.ext == "jpg":
            problems.append("keep_16bit needs PNG tiles (JPEG is 8-bit)")
        if problems:
            raise TilingError("; ".join(problems))

    def formats(self) -> tuple[str, ...]:
        """Label formats written, the first at the DST root (see :func:`label_formats`)."""
        return label_formats(self.format)


def label_formats(format: str) -> tuple[str, ...]:
    """Label formats a ``--format`` writes, the first at the DST root (``both``: detect at the root, obb under
    ``DST/obb``).

    Examples:
        >>> label_formats("both"), label_formats("obb")
        (('detect', 'obb'), ('obb',))
    """
    return LABEL_FORMATS if format == "both" else (format,)  # segment: one outline per piece of each object


DEFAULTS = TileConfig()  # the defaults, for signatures and help texts
