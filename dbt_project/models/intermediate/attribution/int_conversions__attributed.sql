-- Every conversion with its profile (by contact_id, else email).
with conversions as (

    select * from {{ ref('stg_crm__conversions') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    coalesce(by_contact.profile_id, by_email.profile_id) as profile_id,
    case
        when by_contact.profile_id is not null then 'contact_id'
        when by_email.profile_id is not null then 'email'
    end as attribution_rule,
    conversions.contact_id,
    conversions.converted_at,
    conversions.value
from conversions
left join keys as by_contact
    on by_contact.key_type = 'contact_id' and by_contact.key_value = conversions.contact_id
left join keys as by_email
    on by_email.key_type = 'email' and by_email.key_value = conversions.email
