-- Every raw contact maps to exactly one profile, and identity_map invents none.
with raw_contacts as (
    select distinct cast(source_system as varchar) as source_system, cast(contact_id as varchar) as contact_id
    from {{ source('crm', 'crm_contacts') }}
    where contact_id is not null
),
mapped as (
    select source_system, contact_id, count(distinct profile_id) as profiles
    from {{ ref('identity_map') }}
    group by 1, 2
)
select coalesce(r.source_system, m.source_system) as source_system,
       coalesce(r.contact_id, m.contact_id) as contact_id,
       coalesce(m.profiles, 0) as profiles
from raw_contacts r
full outer join mapped m
    on r.source_system is not distinct from m.source_system and r.contact_id = m.contact_id
where coalesce(m.profiles, 0) <> 1 or r.contact_id is null
