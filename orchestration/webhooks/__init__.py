"""Inbound consent webhooks: unsubscribes, bounces and spam reports flowing back from the tools.

    tool  --signed POST-->  receiver (verify, parse)  --fsync-->  spool (JSONL)
    spool  --drain (Dagster sensor or `outflow webhooks drain`)-->  raw.consent_events

The receiver never touches the warehouse (DuckDB has one writer; dbt and syncs write
it too): it answers 2xx only once the events are durable in the spool. The drain
inserts them idempotently (a ledger of event ids in `outflow.webhook_events`).
No Dagster import here.
"""
