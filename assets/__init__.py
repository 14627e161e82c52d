"""The Dagster layer: assets, partitions, resources and the `Definitions` of PoseFramer."""
