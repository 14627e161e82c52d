"""The Dagster layer: assets, partitions, resources and the `Definitions` of PoseFramer."""

import warnings

import dagster as dg

# Single-run backfills (a beta parameter) and partitioned asset checks (a preview) are used
# deliberately; their notes would only clutter every command's and the UI's output.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
