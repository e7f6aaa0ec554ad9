-- Every order with its profile (by contact_id, else email) and its amount in USD.
-- FX rates are static and approximate (var outflow_fx_to_usd); orders in a currency
-- without a rate keep amount_usd null and do not count towards monetary value.
{%- set fx = var('outflow_fx_to_usd', {'USD': 1.0, 'EUR': 1.08, 'GBP': 1.27}) %}

with orders as (

    select * from {{ ref('stg_shop__orders') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    orders.order_id,
    coalesce(by_contact.profile_id, by_email.profile_id) as profile_id,
    case
        when by_contact.profile_id is not null then 'contact_id'
        when by_email.profile_id is not null then 'email'
    end as attribution_rule,
    orders.contact_id,
    orders.status,
    orders.amount,
    orders.currency,
    orders.amount * case coalesce(orders.currency, 'USD')
        {%- for code, rate in fx.items() %}
        when '{{ code | upper }}' then {{ rate }}
        {%- endfor %}
    end as amount_usd,
    orders.ordered_at
from orders
left join keys as by_contact
    on by_contact.key_type = 'contact_id' and by_contact.key_value = orders.contact_id
left join keys as by_email
    on by_email.key_type = 'email' and by_email.key_value = orders.email
