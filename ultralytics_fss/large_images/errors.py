"""Failure kinds of the DOTA tools: the tiler's whole run or one image, and merge-back / tiled prediction input."""


class TilingError(Exception):
    """A problem with the arguments or the source as a whole; nothing was tiled."""


class ImageError(Exception):
    """One image cannot be tiled (unreadable, corrupt, unsupported pixel type)."""


class MergeError(ValueError):
    """Bad input to ``merge_dota`` or ``predict_tiled`` (argument, manifest, prediction file); nothing was written."""
