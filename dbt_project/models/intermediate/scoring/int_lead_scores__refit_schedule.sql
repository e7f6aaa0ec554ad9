-- When the predictive lead score was last fitted, and under which settings: one row.
-- Every cutoff of the training snapshots is relative to the fit's as_of, so refitting
-- every day would rebuild them and retrain every day. The stored row is kept until a
-- refit is due; the pre-hook (lead_model_expire_fit) deletes it when
--   the fit's as_of is outflow_lead_model_refit_days or more before as_of (0: every build),
--   or after as_of (a backfill to an earlier day),
--   or a setting that shapes the model (lead_model_settings) or the feature query changed,
-- and this query then writes a new fit for as_of. --full-refresh refits as well.
-- int_lead_scores__training_snapshots and int_lead_scores__model follow fit_id.
{{ config(materialized='incremental', pre_hook="{{ lead_model_expire_fit() }}") }}

with current_fit as (

    select
        {{ outflow_as_of() }} as fitted_as_of,
        '{{ lead_model_settings_key() }}' as settings_key

)

select
    {{ dbt.hash("cast(fitted_as_of as varchar) || '|' || settings_key") }} as fit_id,
    fitted_as_of,
    settings_key
from current_fit
{%- if is_incremental() %}
where not exists (select 1 from {{ this }})
{%- endif %}
