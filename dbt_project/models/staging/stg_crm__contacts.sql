-- One row per (source_system, contact_id): the latest version by updated_at.
-- A table, not a view like the other staging models: phone and name normalisation is
-- the costliest SQL of the project, and identity, attribution and profiles all read it.
--
-- Incremental: most raw contacts are the same from one day to the next, so a run picks
-- the latest raw row of every contact (cheap) and normalises only the contacts whose
-- latest row is not the one already stored (row_hash differs); removed contacts are
-- deleted by the post-hook. row_hash covers the raw row and a fingerprint of the
-- normalisation (its compiled SQL and the seeds it joins), so a change to either
-- normalises every row again: the table always equals a full rebuild.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='contact_key',
    on_schema_change='append_new_columns',
    post_hook="{{ delete_removed_contacts(source('crm', 'crm_contacts')) }}"
) }}
{%- set raw = source('crm', 'crm_contacts') %}
{%- set raw_columns = ['contact_id', 'source_system', 'email', 'phone', 'first_name', 'last_name', 'street_address',
                       'city', 'postal_code', 'country', 'date_of_birth', 'company', 'job_title', 'industry',
                       'employee_count', 'lead_source', 'lifecycle_stage', 'created_at', 'updated_at'] %}
{%- set incremental = hashed_incremental('row_hash') %}

{#- The normalisation of the changed rows, kept as text so that its fingerprint says
    when it changed (macros, vars and phone_is_valid's seed patterns included). -#}
{%- set normalization -%}
typed as (
    select
        {%- for key in ['contact_key', 'row_hash', 'contact_id', 'source_system'] %}
        changed.{{ key }},
        {%- endfor %}
        {{ normalize_email('email') }} as email,
        {{ as_text('phone') }} as phone_raw,
        {{ proper_case('first_name') }} as first_name,
        {{ proper_case('last_name') }} as last_name,
        {{ first_name_key('first_name') }} as first_name_key,
        {{ letters_key('last_name') }} as last_name_normalized,
        {{ clean_text('street_address') }} as street_address,
        {{ clean_text('city') }} as city,
        -- integers loaded as DOUBLE would read '12345.0'
        regexp_replace({{ clean_text('postal_code') }}, '^(\d+)\.0+$', '\1') as postal_code,
        {{ country_key('country') }} as country_key,
        {{ date_from_raw(raw, 'date_of_birth') }} as date_of_birth,
        {{ clean_text('company') }} as company,
        {{ clean_text('job_title') }} as job_title,
        {{ clean_text('industry') }} as industry,
        try_cast(try_cast(replace({{ as_text('employee_count') }}, ',', '') as double) as integer) as employee_count,
        lower({{ clean_text('lead_source') }}) as lead_source,
        lower({{ clean_text('lifecycle_stage') }}) as lifecycle_stage,
        changed.created_at,
        changed.updated_at
    from changed
),

normalized as (
    select
        typed.contact_key,
        typed.source_system,
        typed.contact_id,
        typed.email,
        {{ is_valid_email('typed.email') }} as email_is_valid,
        {{ email_domain('typed.email') }} as email_domain,
        {{ phone_e164('typed.phone_raw', 'countries.country_code') }} as phone_e164,
        typed.first_name,
        typed.last_name,
        coalesce(nicknames.canonical_name, typed.first_name_key) as first_name_canonical,
        typed.last_name_normalized,
        typed.street_address,
        typed.city,
        typed.postal_code,
        countries.country_code,
        typed.date_of_birth,
        typed.company,
        typed.job_title,
        typed.industry,
        typed.employee_count,
        typed.lead_source,
        typed.lifecycle_stage,
        typed.created_at,
        typed.updated_at,
        typed.row_hash
    from typed
    left join {{ ref('country_codes') }} as countries on countries.country_key = typed.country_key
    left join {{ ref('nicknames') }} as nicknames on nicknames.nickname = typed.first_name_key
),

final as (
    select
        normalized.* exclude (row_hash),
        -- Only valid numbers (not merely possible ones) may link people: see phone_is_valid.
        {{ phone_is_valid('normalized.phone_e164') }} as phone_is_valid,
        normalized.row_hash
    from normalized
)
{%- endset %}

with

fingerprint as (
    -- what the normalised values depend on besides the raw row (not the file name of the warehouse)
    select md5(concat_ws('|', '{{ code_fingerprint(normalization) }}',
        {%- for seed in ['country_codes', 'nicknames', 'phone_regions'] %}
        (select coalesce(string_agg(cast(s as varchar), '|' order by cast(s as varchar)), '')
         from {{ ref(seed) }} as s){{ "," if not loop.last }}
        {%- endfor %}
    )) as value
),

raw_rows as (
    select
        source.*,
        lower({{ as_text('source.source_system') }}) || ':' || {{ as_text('source.contact_id') }} as contact_key,
        -- 64 bits over the typed raw values, nulls included (the row's identity, not a secret)
        hash(fingerprint.value
            {%- for column in raw_columns %}, source.{{ column }}{% endfor %}) as row_hash
    from {{ raw }} as source
    cross join fingerprint
),

versions as (
    -- narrow on purpose (sorting whole rows was most of this model's time); equal raw rows
    -- are one version with their number of copies
    select
        contact_key,
        row_hash,
        max({{ timestamp_from_raw(raw, 'updated_at') }}) as updated_at,
        max({{ timestamp_from_raw(raw, 'created_at') }}) as created_at,
        count(*) as copies
    from raw_rows
    where contact_key is not null
    group by contact_key, row_hash
),

latest as (
    select contact_key, row_hash, copies
    from versions
    qualify row_number() over (
        partition by contact_key
        -- ties on updated_at fall back to created_at, then to the row's content, so reruns agree
        order by updated_at desc nulls last, created_at desc nulls last, row_hash
    ) = 1
),

changed_versions as (
    select latest.*
    from latest
    {{- not_stored('latest', ['contact_key'], 'row_hash', incremental) }}
),

changed_rows as (
    -- the raw rows of those versions; of a version landed more than once, any copy will do
    select raw_rows.*
    from raw_rows
    inner join changed_versions
        on changed_versions.row_hash = raw_rows.row_hash and changed_versions.contact_key = raw_rows.contact_key
    where changed_versions.copies = 1
    union all
    select raw_rows.*
    from raw_rows
    inner join changed_versions
        on changed_versions.row_hash = raw_rows.row_hash and changed_versions.contact_key = raw_rows.contact_key
    where changed_versions.copies > 1
    qualify row_number() over (partition by raw_rows.contact_key) = 1
),

changed as (
    select
        changed_rows.* exclude (contact_id, source_system, created_at, updated_at),
        {{ as_text('changed_rows.contact_id') }} as contact_id,
        lower({{ as_text('changed_rows.source_system') }}) as source_system,
        {{ timestamp_from_raw(raw, 'created_at') }} as created_at,
        {{ timestamp_from_raw(raw, 'updated_at') }} as updated_at
    from changed_rows
),

{{ normalization }}

select * from final
