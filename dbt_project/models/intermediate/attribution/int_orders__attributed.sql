-- Every order with its profile (by contact_id, else email) and its amount in USD.
-- FX rates are static and approximate (var outflow_fx_to_usd); orders in a currency
-- without a rate keep amount_usd null and do not count towards monetary value.
--
-- Incremental (macros/incremental_events.sql): every order is attributed again (a new
-- contact or a merge can move old orders to another profile); only rows that are new or
-- whose profile changed are written (delete+insert on order_id).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='order_id') }}
{%- set fx = var('outflow_fx_to_usd', {'USD': 1.0, 'EUR': 1.08, 'GBP': 1.27}) %}
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}
{%- set order_columns = ['order_id', 'contact_id', 'email', 'status', 'amount', 'currency', 'ordered_at'] %}

with

{% if is_incremental() -%}
restated as (

    select {{ order_columns | join(', ') }}
    from {{ ref('stg_shop__orders') }}
    where ordered_at >= {{ event_watermark('ordered_at') }} or ordered_at is null

),

orders as (

    select
        {{ order_columns | join(', ') }},
        true as is_restated,
        cast(null as {{ dbt.type_string() }}) as prior_profile_id
    from restated
    union all
    select
        {%- for col in order_columns %}
        loaded.{{ col }},
        {%- endfor %}
        false as is_restated,
        loaded.profile_id as prior_profile_id
    from {{ this }} as loaded
    where not exists (select 1 from restated where restated.order_id = loaded.order_id)

),
{%- else -%}
orders as (

    select
        {{ order_columns | join(', ') }},
        true as is_restated,
        cast(null as {{ dbt.type_string() }}) as prior_profile_id
    from {{ ref('stg_shop__orders') }}

),
{%- endif %}

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

),

attributed as (

    select
        orders.order_id,
        {{ attributed_profile(attribution_keys) }},
        orders.contact_id,
        orders.email,
        orders.status,
        orders.amount,
        orders.currency,
        orders.amount * case coalesce(orders.currency, 'USD')
            {%- for code, rate in fx.items() %}
            when '{{ code | upper }}' then {{ rate }}
            {%- endfor %}
        end as amount_usd,
        orders.ordered_at,
        orders.is_restated,
        orders.prior_profile_id
    from orders
    {{ attribution_joins('orders', attribution_keys) }}

)

select
    order_id,
    profile_id,
    attribution_rule,
    contact_id,
    email,
    status,
    amount,
    currency,
    amount_usd,
    ordered_at
from attributed
{%- if is_incremental() %}
where is_restated or profile_id is distinct from prior_profile_id
{%- endif %}
