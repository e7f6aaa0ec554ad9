-- Every order with its profile (by contact_id, else email) and its amount in USD.
-- FX rates are static and approximate (var outflow_fx_to_usd); orders in a currency
-- without a rate keep amount_usd null and do not count towards monetary value.
{%- set fx = var('outflow_fx_to_usd', {'USD': 1.0, 'EUR': 1.08, 'GBP': 1.27}) %}
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}

with orders as (

    select * from {{ ref('stg_shop__orders') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    orders.order_id,
    {{ attributed_profile(attribution_keys) }},
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
{{ attribution_joins('orders', attribution_keys) }}
