"""Retrieval: from query vectors to a page of results over a served version.

    score = λ · cal_p(pose · pose') + (1 − λ) · cal_c(clip · clip')

- `exact`: the hybrid score of every row (brute force), the reference for everything else;
- `calibration`: the per-version affine maps that put both similarities on one scale;
- `ann`: the per-side IVF index of a large version (built when it is published);
- `searchable`: what they read of a served version (a protocol `storage.snapshot` meets);
- `ranking`: a query's ranking over a version, exact or through the index's certified
  candidate pools, in segments (`rank`);
- `paging`: filters, grouping, the relevance floor and cursors (`page`).

The service asks this package; `storage` keeps and loads its files (`storage.ann_files`,
`storage.snapshot`) and publishes a version through it (`storage.publishing`).
"""
