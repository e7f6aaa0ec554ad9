-- Every order with its profile (by contact_id, else email) and its amount in USD.
-- FX rates are static and approximate (var outflow_fx_to_usd); orders in a currency
-- without a rate keep amount_usd null and do not count towards monetary value.
--
-- Incremental (macros/incremental_events.sql): the orders inside the lookback window and
-- those whose contact_id or email changed profile since the last run (a new contact or a
-- merge can move old orders) are attributed again; only rows that are new or whose
-- profile changed are written (delete+insert on order_id).
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='order_id', event_time='ordered_at',
          post_hook="{{ remember_keys_seen(ref('int_identity__lookup_keys')) }}") }}
{%- set fx = var('outflow_fx_to_usd', {'USD': 1.0, 'EUR': 1.08, 'GBP': 1.27}) %}
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}
{%- set order_columns = ['order_id', 'contact_id', 'email', 'status', 'amount', 'currency', 'ordered_at'] %}
{%- set priors = [('prior_profile_id', 'profile_id', dbt.type_string())] %}

with

{{ incremental_event_rows(ref('stg_shop__orders'), order_columns, 'order_id', priors, attribution_keys,
                         time_column='ordered_at') }},

attributed as (

    select
        events.order_id,
        {{ attributed_profile(attribution_keys) }},
        events.contact_id,
        events.email,
        events.status,
        events.amount,
        events.currency,
        events.amount * case coalesce(events.currency, 'USD')
            {%- for code, rate in fx.items() %}
            when '{{ code | upper }}' then {{ rate }}
            {%- endfor %}
        end as amount_usd,
        events.ordered_at,
        events.is_restated,
        events.prior_profile_id
    from events
    {{ attribution_joins('events', attribution_keys) }}

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
{{ only_new_or_changed_rows(priors) }}
