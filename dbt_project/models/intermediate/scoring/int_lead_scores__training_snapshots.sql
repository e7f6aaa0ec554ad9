-- The labelled snapshots the predictive lead score is fitted and judged on, relative to
-- the fit's as_of (int_lead_scores__refit_schedule), not to today's:
--   train: cutoffs fitted_as_of - 2 * window - k * step for k = 0..train_snapshots - 1, so
--          every training label window ends by the held-out cutoff
--   test:  fitted_as_of - window, held out for the model card (the latest complete window)
-- Rebuilt only when a refit is due (a new fit_id); otherwise the stored rows are kept as
-- they are. Features: lead_model_snapshot_features (shared with int_lead_scores__score_snapshot).
{{ config(materialized='incremental', on_schema_change='sync_all_columns',
          pre_hook="{{ lead_model_drop_stale_rows() }}") }}
{%- set schedule = ref('int_lead_scores__refit_schedule') %}

{%- if lead_model_rows_are_current() %}

-- The stored snapshots belong to the current fit: nothing to add.
select * from {{ this }} where false

{%- else %}

{%- set cutoffs -%}
    {{ lead_model_training_cutoffs(schedule) }}
{%- endset %}

select features.*, schedule.fit_id, schedule.fitted_as_of
from ({{ lead_model_snapshot_features(cutoffs, with_labels=true) }}) as features
cross join {{ schedule }} as schedule

{%- endif %}
