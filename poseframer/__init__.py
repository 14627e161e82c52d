"""The `poseframer` command: the one place that drives both the indexer (assets/) and the
service (serving/), which never import each other."""
