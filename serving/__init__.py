"""PoseFramer's HTTP layer: the FastAPI app, its settings and the `poseframer` command."""
