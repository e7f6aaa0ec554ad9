-- One row per (source_system, contact_id): the latest version by updated_at.
-- A table, not a view like the other staging models: phone and name normalisation is
-- the costliest SQL of the project, and identity, attribution and profiles all read it.
{{ config(materialized='table') }}

with

source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

typed as (
    select
        {{ as_text('contact_id') }} as contact_id,
        lower({{ as_text('source_system') }}) as source_system,
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
        {{ date_from_raw(source('crm', 'crm_contacts'), 'date_of_birth') }} as date_of_birth,
        {{ clean_text('company') }} as company,
        {{ clean_text('job_title') }} as job_title,
        {{ clean_text('industry') }} as industry,
        try_cast(try_cast(replace({{ as_text('employee_count') }}, ',', '') as double) as integer) as employee_count,
        lower({{ clean_text('lead_source') }}) as lead_source,
        lower({{ clean_text('lifecycle_stage') }}) as lifecycle_stage,
        {{ timestamp_from_raw(source('crm', 'crm_contacts'), 'created_at') }} as created_at,
        {{ timestamp_from_raw(source('crm', 'crm_contacts'), 'updated_at') }} as updated_at
    from source
),

latest as (
    select *
    from typed
    where contact_id is not null and source_system is not null
    qualify row_number() over (
        partition by source_system, contact_id
        -- ties on updated_at fall back to created_at, then to the row's content, so reruns agree
        order by updated_at desc nulls last, created_at desc nulls last,
                 md5(concat_ws('|', email, phone_raw, first_name, last_name, street_address, city,
                               postal_code, company, job_title))
    ) = 1
),

countries as (
    select country_key, country_code from {{ ref('country_codes') }}
),

nicknames as (
    select nickname, canonical_name from {{ ref('nicknames') }}
),

final as (
    select
        latest.source_system || ':' || latest.contact_id as contact_key,
        latest.source_system,
        latest.contact_id,
        latest.email,
        {{ is_valid_email('latest.email') }} as email_is_valid,
        {{ email_domain('latest.email') }} as email_domain,
        {{ phone_e164('latest.phone_raw', 'countries.country_code') }} as phone_e164,
        latest.first_name,
        latest.last_name,
        coalesce(nicknames.canonical_name, latest.first_name_key) as first_name_canonical,
        latest.last_name_normalized,
        latest.street_address,
        latest.city,
        latest.postal_code,
        countries.country_code,
        latest.date_of_birth,
        latest.company,
        latest.job_title,
        latest.industry,
        latest.employee_count,
        latest.lead_source,
        latest.lifecycle_stage,
        latest.created_at,
        latest.updated_at
    from latest
    left join countries on countries.country_key = latest.country_key
    left join nicknames on nicknames.nickname = latest.first_name_key
)

select
    final.*,
    -- Only valid numbers (not merely possible ones) may link people: see phone_is_valid.
    {{ phone_is_valid('final.phone_e164') }} as phone_is_valid
from final
