"""Pure compute for PoseFramer, one folder per capability:

- `sources/`: where images come from (folders, the inbox, URL lists, crawls, Openverse,
  Pinterest) and duplicates;
- `pose/`: pose reading (keypoints, people, drawings, framing, the pose vector);
- `clip/`: the CLIP encoder and its weights;
- `retrieval/`: exact scoring, calibration, the ANN index, ranking and paging;
- `backends/`: optional model backends, all registered by `catalog.py`;
- beside them the shared pieces: `records.py` (the records every stage passes on),
  `images.py` (decoding, renditions), `registry.py`, `indexing.py` (a batch through the
  models), `query.py` (a query's pose and text), `previews.py`.

Nothing here knows about Dagster, FastAPI or LanceDB; the assets and the service both call
these functions, so a query and the index are always computed the same way.
"""
