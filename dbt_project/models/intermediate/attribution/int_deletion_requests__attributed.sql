-- Every deletion request with the profile of its email address.
{%- set attribution_keys = [('email', 'email')] %}

with requests as (

    select * from {{ ref('stg_consent__deletion_requests') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    {{ attributed_profile(attribution_keys) }},
    requests.email,
    requests.requested_at
from requests
{{ attribution_joins('requests', attribution_keys) }}
