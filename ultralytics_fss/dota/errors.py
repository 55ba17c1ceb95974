"""The tiler's two failure kinds: the whole run (bad arguments, unusable source) or one image."""


class TilingError(Exception):
    """A problem with the arguments or the source as a whole; nothing was tiled."""


class ImageError(Exception):
    """One image cannot be tiled (unreadable, corrupt, unsupported pixel type)."""
