-- Keys that point activity rows (events, orders, consent) at a profile.
-- A key is kept only when every contact carrying it belongs to the same profile:
-- a phone shared by a household or an email a resolver left split would otherwise
-- hand one person's clicks or consent to another.
--
-- Incremental (macros/attribution_changes.sql): a run writes only the keys that are new,
-- whose profile or contact count changed, or that stopped identifying one profile (kept
-- as a row with a null profile_id). changed_at is when the key's profile last changed:
-- the attributed event models re-attribute only the events of keys changed since their
-- own last run.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['key_type', 'key_value'],
          on_schema_change='append_new_columns') }}

with resolved as (

    select contact_key, profile_id
    from {{ ref('int_contacts__resolved') }}

),

contacts as (

    select
        resolved.profile_id,
        contacts.contact_id,
        contacts.email,
        contacts.phone_e164
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join resolved
        on contacts.contact_key = resolved.contact_key

),

keys as (

    select 'contact_id' as key_type, contact_id as key_value, profile_id from contacts
    where contact_id is not null
    union all
    select 'email' as key_type, email as key_value, profile_id from contacts
    where email is not null
    union all
    select 'phone' as key_type, phone_e164 as key_value, profile_id from contacts
    where phone_e164 is not null

),

current_keys as (

    select
        key_type,
        key_value,
        min(profile_id) as profile_id,
        count(*) as contact_count
    from keys
    group by key_type, key_value
    -- one profile behind the key (min = max: a distinct count costs far more at millions of keys)
    having min(profile_id) = max(profile_id)

)

{%- if is_incremental() %}
{#- A table from before changed_at existed: every key counts as changed once. -#}
{%- set upgrading = 'changed_at' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) %}
{%- set stamp = key_change_stamp(none if upgrading else this) %}

select
    coalesce(current_keys.key_type, stored.key_type) as key_type,
    coalesce(current_keys.key_value, stored.key_value) as key_value,
    current_keys.profile_id,
    current_keys.contact_count,
    case
        {%- if not upgrading %}
        when current_keys.profile_id is not distinct from stored.profile_id then stored.changed_at
        {%- endif %}
        when true then {{ stamp }}
    end as changed_at
from current_keys
full join {{ this }} as stored
    on current_keys.key_type = stored.key_type and current_keys.key_value = stored.key_value
-- new keys, keys whose profile or count changed, and keys gone since the last run
-- (written once with a null profile_id so the attributed models see them go)
where stored.key_value is null
    or current_keys.profile_id is distinct from stored.profile_id
    or current_keys.contact_count is distinct from stored.contact_count
    {%- if upgrading %}
    or true
    {%- endif %}
{%- else %}

select
    key_type,
    key_value,
    profile_id,
    contact_count,
    {{ key_change_stamp() }} as changed_at
from current_keys
{%- endif %}
