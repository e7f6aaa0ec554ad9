-- Every conversion with its profile (by contact_id, else email).
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}

with conversions as (

    select * from {{ ref('stg_crm__conversions') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    {{ attributed_profile(attribution_keys) }},
    conversions.contact_id,
    conversions.converted_at,
    conversions.value
from conversions
{{ attribution_joins('conversions', attribution_keys) }}
