-- Keys that point activity rows (events, orders, consent) at a profile.
-- A key is kept only when every contact carrying it belongs to the same profile:
-- a phone shared by a household or an email a resolver left split would otherwise
-- hand one person's clicks or consent to another.
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

)

select
    key_type,
    key_value,
    min(profile_id) as profile_id,
    count(*) as contact_count
from keys
group by key_type, key_value
-- one profile behind the key (min = max: a distinct count costs far more at millions of keys)
having min(profile_id) = max(profile_id)
