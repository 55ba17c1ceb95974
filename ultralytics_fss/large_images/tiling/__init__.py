"""The DOTA tiler: source images and DOTA labels in, an Ultralytics YOLO dataset (tiles, labels, manifest) out.

:func:`~.pipeline.tile_dota` runs the stages: :mod:`.prepare`, :mod:`.output` (the one owner of DST's layout and
state), :mod:`.run` (pool or inline), :mod:`.tile` (one image, in a worker), :mod:`.summary`; :mod:`.config` holds the
options, :mod:`.records` what travels between the stages.

Nothing here imports :mod:`ultralytics_fss.large_images.merge_back`. This file imports nothing: pool workers import
:mod:`.tile` through it and must start without Ultralytics or torch.
"""
