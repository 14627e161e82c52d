"""Sources: where images come from, and what an ingest does with them.

- `base`: the `Source` protocol, `open_source` (a batch's kind and options to a source) and the
  decoding of a source's items; folders and the inbox (`inbox`) are local kinds;
- `url_list`, `crawler`, `openverse`, `pinterest`: the web kinds, fetched politely by
  `fetcher` (robots.txt, per-host spacing, retries, size limits);
- `dedupe`: exact and near-duplicate images (perceptual hashes);
- `samples`: the openly licensed sample list and the embedded demo corpus.
"""
