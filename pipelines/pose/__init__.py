"""Pose reading: from an image to people's keypoints, and from keypoints to a pose vector.

- `keypoints`: the keypoint detectors (BlazePose through MediaPipe by default) and their
  registry; `person_detection` proposes people (pose and face detectors, tiles, a second
  pass), `human_evidence` keeps people and drops animals and patterns, `hands` refines
  wrists, `low_light` reads dim photos again;
- `medium` decides whether an image is a drawing; drawn figures are read by `drawn` (the
  drawn-figure model, its training data and recipe) and `stick_figures` (a classical reader);
- `framing`: portrait / half body / full body per image and person;
- `embedding`: the pose vector searched with, and its registry.

Optional keypoint and pose backends (RTMPose, SAM 3D Body, PoseC3D) are `pipelines.backends`.
"""
