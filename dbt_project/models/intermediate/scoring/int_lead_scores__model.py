"""Train and judge the predictive lead score: one row, the model card plus the pickled model.

Incremental: the stored row is kept while it belongs to the current fit of
int_lead_scores__refit_schedule (the pre-hook lead_model_drop_stale_rows deletes a row of
an earlier fit), so the model is refitted on the schedule's cadence, not on every build.
The method lives in orchestration.scoring (shared with `outflow score-file`); this model
feeds it int_lead_scores__training_snapshots and writes its answer back.
"""

from orchestration.scoring.refit import fit_or_keep


def model(dbt, session):
    # sync_all_columns: a card written by an earlier version (other columns) is replaced.
    dbt.config(materialized="incremental", on_schema_change="sync_all_columns")
    # The vars outflow_lead_model_*, passed through the model's meta (see _int_scoring.yml).
    configured = dbt.config.meta_get("lead_model") or {}
    kept = session.sql(f"select count(*) from {dbt.this}").fetchall()[0][0] if dbt.is_incremental else 0
    schedule = dbt.ref("int_lead_scores__refit_schedule")
    training = dbt.ref("int_lead_scores__training_snapshots")  # a lazy relation: read only to fit
    card = fit_or_keep(kept_rows=kept, schedule=schedule.to_arrow_table(), training=training.to_arrow_table,
                       configured=configured)
    # A relation of this connection: dbt-duckdb writes other results through a second
    # cursor, whose temporary table the incremental insert cannot see.
    return session.from_arrow(card)
