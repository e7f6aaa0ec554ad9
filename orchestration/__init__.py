"""outflow orchestration: the Dagster code location, the sample-data generator and the CLI."""
