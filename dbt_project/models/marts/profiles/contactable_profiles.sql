-- The contact rule: may a profile be in a sync of this channel? One row per profile and
-- channel (email, sms, ads, crm). The sync engine joins it on every sync's profile key,
-- so this is the one place that decides it (docs/privacy.md):
--   email, sms, ads: the channel's consent is granted (the consent mart folds
--     unsubscribes, hard bounces and spam reports after a grant into a revoke);
--   crm: no deletion request (a CRM record rests on the business relationship, not on
--     marketing consent; it sends nothing by itself);
--   a deletion request makes a profile contactable on no channel.
with consent as (

    select profile_id, channel, status, reason, updated_at
    from {{ ref('consent') }}

),

deletions as (

    select profile_id, min(updated_at) as requested_at
    from consent
    where reason = 'deletion_requested'
    group by profile_id

),

consent_channels as (

    select
        consent.profile_id,
        consent.channel,
        consent.status = 'granted' as is_contactable,
        consent.reason,
        consent.updated_at as decided_at
    from consent

),

crm_channel as (

    select
        profiles.profile_id,
        'crm' as channel,
        deletions.profile_id is null as is_contactable,
        case when deletions.profile_id is null then 'no_deletion_request' else 'deletion_requested' end as reason,
        deletions.requested_at as decided_at
    from (select distinct profile_id from consent) as profiles
    left join deletions
        on profiles.profile_id = deletions.profile_id

),

channels as (

    select * from consent_channels
    union all
    select * from crm_channel

)

select
    channels.profile_id,
    channels.channel,
    channels.is_contactable,
    channels.reason,
    deletions.profile_id is not null as is_deletion_requested,
    channels.decided_at
from channels
left join deletions
    on channels.profile_id = deletions.profile_id
-- Stored by channel: a sync reads one channel's rows (orchestration/sync/plan.py, the contact
-- rule), and DuckDB's min/max per row group then skips the other channels' groups.
order by channels.channel
