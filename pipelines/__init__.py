"""Pure compute for PoseFramer: records, model backends, pose geometry and source readers.

Nothing here knows about Dagster, FastAPI or LanceDB; the assets and the service both call
these functions, so a query and the index are always computed the same way.
"""
