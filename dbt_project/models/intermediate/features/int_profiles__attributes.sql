-- One row per profile with the surviving value of each attribute.
-- The survivorship rules are documented per column in _features.yml (and the
-- profiles mart); each CTE below implements one of them.
--
-- Incremental: a profile's attributes depend only on its contacts' rows, so a run
-- recomputes only the profiles whose contacts changed: source_hash (over the profile's
-- contact keys with their row_hash from stg_crm__contacts, and over the compiled rules
-- below) differs from the stored one. Profiles that no longer exist (merged into
-- another, contacts removed) are deleted by the post-hook. Equal to a full rebuild.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='profile_id',
    on_schema_change='append_new_columns',
    post_hook="delete from {{ this }} where profile_id not in (select profile_id from {{ ref('int_contacts__resolved') }})"
) }}
{%- set lifecycle_order = ['subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead',
                           'opportunity', 'customer', 'evangelist'] %}
{%- set incremental = hashed_incremental('source_hash') %}

{#- The survivorship rules over the CTE `contacts`, kept as text for their fingerprint. -#}
{%- set survivorship -%}
contacts as (

    select
        *,
        {{ source_system_rank('source_system') }} as source_rank,
        case lifecycle_stage
            {%- for stage in lifecycle_order %}
            when '{{ stage }}' then {{ loop.index }}
            {%- endfor %}
            else 0
        end as lifecycle_rank
    from changed_contacts

),

{{ survivor_cte('best_email', 'contacts', ['email', 'email_domain'],
    order_by='source_rank, updated_at desc nulls last',
    where='email is not null and email_is_valid') }},

{{ survivor_cte('best_phone', 'contacts', ['phone_e164'],
    order_by='phone_is_valid desc, updated_at desc nulls last, source_rank',
    where='phone_e164 is not null') }},

{{ survivor_cte('best_name', 'contacts', ['first_name', 'last_name'],
    order_by='source_rank, (first_name is not null and last_name is not null) desc, '
             ~ 'length(coalesce(first_name, \'\')) + length(coalesce(last_name, \'\')) desc, '
             ~ 'updated_at desc nulls last',
    where='first_name is not null or last_name is not null') }},

{{ survivor_cte('best_address', 'contacts', ['street_address', 'city', 'postal_code'],
    order_by='source_rank, (case when street_address is not null then 1 else 0 end '
             ~ '+ case when city is not null then 1 else 0 end '
             ~ '+ case when postal_code is not null then 1 else 0 end) desc, '
             ~ 'updated_at desc nulls last',
    where='street_address is not null or city is not null or postal_code is not null') }},

{%- for column in ['company', 'job_title', 'industry', 'employee_count'] %}

{{ survivor_cte('best_' ~ column, 'contacts', [column],
    order_by='source_rank, updated_at desc nulls last',
    where=column ~ ' is not null') }},
{%- endfor %}

{{ survivor_cte('best_lifecycle_stage', 'contacts', ['lifecycle_stage'],
    order_by='lifecycle_rank desc, source_rank, updated_at desc nulls last',
    where='lifecycle_stage is not null') }},

{{ survivor_cte('first_touch', 'contacts', ['lead_source'],
    order_by='created_at asc nulls last, source_rank',
    where='lead_source is not null') }},

{{ most_frequent_cte('best_country', 'contacts', 'country_code') }},

{{ most_frequent_cte('best_date_of_birth', 'contacts', 'date_of_birth') }},

rollup as (

    select
        profile_id,
        count(*) as contact_count,
        {{ dbt.listagg('distinct source_system', "','", 'order by source_system') }} as source_systems,
        min(created_at) as first_seen_at,
        max(updated_at) as last_updated_at
    from contacts
    group by profile_id

)

select
    rollup.profile_id,
    best_email.email,
    best_email.email_domain,
    best_phone.phone_e164,
    best_name.first_name,
    best_name.last_name,
    best_address.street_address,
    best_address.city,
    best_address.postal_code,
    best_country.country_code,
    best_date_of_birth.date_of_birth,
    best_company.company,
    best_job_title.job_title,
    {{ job_title_seniority('best_job_title.job_title') }} as seniority,
    best_industry.industry,
    best_employee_count.employee_count,
    best_lifecycle_stage.lifecycle_stage,
    first_touch.lead_source,
    rollup.source_systems,
    rollup.contact_count,
    rollup.first_seen_at,
    rollup.last_updated_at,
    changed_profiles.source_hash
from rollup
inner join changed_profiles on rollup.profile_id = changed_profiles.profile_id
left join best_email on rollup.profile_id = best_email.profile_id
left join best_phone on rollup.profile_id = best_phone.profile_id
left join best_name on rollup.profile_id = best_name.profile_id
left join best_address on rollup.profile_id = best_address.profile_id
left join best_country on rollup.profile_id = best_country.profile_id
left join best_date_of_birth on rollup.profile_id = best_date_of_birth.profile_id
left join best_company on rollup.profile_id = best_company.profile_id
left join best_job_title on rollup.profile_id = best_job_title.profile_id
left join best_industry on rollup.profile_id = best_industry.profile_id
left join best_employee_count on rollup.profile_id = best_employee_count.profile_id
left join best_lifecycle_stage on rollup.profile_id = best_lifecycle_stage.profile_id
left join first_touch on rollup.profile_id = first_touch.profile_id
{%- endset %}

with

profile_sources as (

    -- what a profile's attributes are computed from: its contacts and their rows
    select
        resolved.profile_id,
        hash('{{ code_fingerprint(survivorship) }}', bit_xor(hash(contacts.contact_key, contacts.row_hash))) as source_hash
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join {{ ref('int_contacts__resolved') }} as resolved
        on contacts.contact_key = resolved.contact_key
    group by resolved.profile_id

),

changed_profiles as (

    select profile_sources.*
    from profile_sources
    {{- not_stored('profile_sources', ['profile_id'], 'source_hash', incremental) }}

),

changed_contacts as (

    select resolved.profile_id, contacts.*
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join {{ ref('int_contacts__resolved') }} as resolved
        on contacts.contact_key = resolved.contact_key
    {%- if incremental %}
    where resolved.profile_id in (select profile_id from changed_profiles)
    {%- endif %}

),

{{ survivorship }}
