"""One dynamic partition per ingest batch, shared by every partitioned asset."""

import dagster as dg

INGEST_BATCHES = "ingest_batches"
ingest_batches = dg.DynamicPartitionsDefinition(name=INGEST_BATCHES)

# GPU-heavy assets load their model once per run and loop over the run's partitions, so a
# backfill over many batches is one run (and every asset shares the policy, so a backfill of
# the whole chain stays one run too).
single_run = dg.BackfillPolicy.single_run()
