"""CLIP: the image and text encoder behind text search and the look of a picture.

- `encoder`: the encoders (open_clip; a tiny random-weight one for tests) and their registry;
- `weights`: where a model's weights come from (a pretrained tag, a local checkpoint) and
  checking them before a run.
"""
