-- What is known about every profile now (cutoff_at = as_of): the rows that get
-- predicted_conversion. Built on every run, with the same features as the training
-- snapshots (lead_model_snapshot_features); no label yet (converted is null).
{%- set cutoffs -%}
    select 'score' as snapshot_kind, {{ outflow_as_of() }} as cutoff_at
{%- endset %}

{{ lead_model_snapshot_features(cutoffs, with_labels=false) }}
