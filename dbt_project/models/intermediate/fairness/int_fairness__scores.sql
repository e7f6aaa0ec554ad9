-- Every score the audit covers, one row per (profile, score) with a value:
--   lead_score            the points score (lead_scores.score, 0-100)
--   predicted_conversion  the predictive score, when lead_scores has that column
--   churn_risk            1 - BG/NBD p_alive, customers only (profiles.churn_risk)
-- A score added later as a column of lead_scores joins the audit by adding it to the list.
-- A view: fairness_score_distribution is its one reader, and as a table it rewrote a row per
-- profile and score (2-3 million at 1M profiles) on every build.
{{ config(materialized='view') }}
{%- set lead_score_columns = outflow_columns_of(ref('lead_scores')) %}
{%- set scores = [('lead_score', 'lead_scores', 'score')] %}
{%- if 'predicted_conversion' in lead_score_columns %}
  {%- do scores.append(('predicted_conversion', 'lead_scores', 'predicted_conversion')) %}
{%- endif %}
{%- do scores.append(('churn_risk', 'profiles', 'churn_risk')) %}

{% for name, model, column in scores -%}
select
    profile_id,
    '{{ name }}' as score_name,
    cast({{ column }} as double) as score_value
from {{ ref(model) }}
where {{ column }} is not null
{% if not loop.last %}union all
{% endif -%}
{%- endfor %}
