-- Every profile audited (deletion-requested profiles are in no segment and no sync, so
-- they are left out) in each demographic group it belongs to, one row per dimension:
-- country (country_code), age_band (date of birth at outflow_as_of()) and gender when
-- profiles has such a column. A missing value is its own group, 'unknown'.
{%- set profile_columns = outflow_columns_of(ref('profiles')) %}
{%- set dimensions = {'country': 'country_code', 'age_band': outflow_age_band('date_of_birth')} %}
{%- if 'gender' in profile_columns %}
  {%- do dimensions.update({'gender': 'lower(gender)'}) %}
{%- endif %}

with profiles as (

    select * from {{ ref('profiles') }}
    where not is_deletion_requested

)

{% for dimension, expression in dimensions.items() -%}
select
    profile_id,
    '{{ dimension }}' as dimension,
    coalesce(cast({{ expression }} as {{ dbt.type_string() }}), 'unknown') as group_value
from profiles
{% if not loop.last %}union all
{% endif -%}
{%- endfor %}
