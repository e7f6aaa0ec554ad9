-- Every raw contact to exactly one profile (the contract other code relies on).
select
    source_system,
    contact_id,
    profile_id,
    match_rule
from {{ ref('int_contacts__resolved') }}
