"""The way back from the tiler's tiles: predictions merged onto full images, DOTA's Task files and metric.

:func:`~.merge_dota.merge_dota` reads a tiler output (:mod:`.tile_predictions`), merges each image's detections
(:mod:`.nms`), writes the Task files and scores them (:mod:`.metric`); :func:`~.predict_tiled.predict_tiled` cuts the
tiler's windows in memory and merges the same way.

It reads what the tiler wrote through its owners (:mod:`ultralytics_fss.large_images.tiling.output`,
:mod:`ultralytics_fss.large_images.tiling.config`). This file imports nothing, so that importing one module loads no
other. """
