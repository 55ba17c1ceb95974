"""Stages of the DOTA tiler; the entry point is :mod:`ultralytics_fss.tile_dota`.

The modules here are pure or I/O-only stages with no Ultralytics import, so worker processes start fast:

- :mod:`~ultralytics_fss.dota.geometry`: sliding windows, polygon repair, clipping, tile labels (numpy + shapely).
- :mod:`~ultralytics_fss.dota.labels`: DOTA class lists and the label-file parser.
- :mod:`~ultralytics_fss.dota.io`: source layouts, image decoding, atomic writes, manifest and data.yaml.
- :mod:`~ultralytics_fss.dota.worker`: tiling one image (the unit of work, restart and sharding).
"""
