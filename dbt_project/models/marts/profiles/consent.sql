-- Consent state per profile and channel (email, sms, ads): the one place that decides
-- whether a profile may be contacted. Rules, in order (documented in _profiles.yml):
--   1. a deletion request revokes every channel for good (reason deletion_requested);
--   2. for email, a suppression (unsubscribe, bounce, spam report from the ESP) at or
--      after the latest consent event revokes it (reasons unsubscribed, bounced,
--      spam_report); a grant after the suppression wins (the person opted in again);
--   3. else the latest consent event decides: granted (opted_in) or revoked, with the
--      reason read from its source (unsubscribe/bounce/spam sources, else manual);
--   4. no event at all: not_granted / never_granted.
-- Events after outflow_as_of() are ignored. On equal timestamps the revoke wins.
with as_of as (

    select {{ outflow_as_of() }} as as_of_at

),

profiles as (

    select distinct profile_id from {{ ref('int_contacts__resolved') }}

),

channels as (

    select 'email' as channel
    union all select 'sms'
    union all select 'ads'

),

consent_events as (

    select events.profile_id, events.channel, events.status, events.source, events.occurred_at
    from {{ ref('int_consent_events__attributed') }} as events
    cross join as_of
    where events.profile_id is not null
        and events.channel in ('email', 'sms', 'ads')
        and events.status in ('granted', 'revoked')
        and events.occurred_at <= as_of.as_of_at

),

latest_consent as (

    select profile_id, channel, status, source, occurred_at
    from (
        select
            *,
            row_number() over (
                partition by profile_id, channel
                order by occurred_at desc, case status when 'revoked' then 0 else 1 end, source
            ) as recency_rank
        from consent_events
    ) as ranked
    where recency_rank = 1

),

suppressions as (

    select
        events.profile_id,
        case events.event_type
            when 'spam_report' then 'spam_report'
            when 'unsubscribe' then 'unsubscribed'
            when 'bounce' then 'bounced'
        end as reason,
        events.occurred_at
    from {{ ref('int_email_events__attributed') }} as events
    cross join as_of
    where events.profile_id is not null
        and events.event_type in ('spam_report', 'unsubscribe', 'bounce')
        and events.occurred_at <= as_of.as_of_at

),

latest_suppression as (

    select profile_id, reason, occurred_at
    from (
        select
            *,
            row_number() over (
                partition by profile_id
                order by occurred_at desc,
                    case reason when 'spam_report' then 0 when 'unsubscribed' then 1 else 2 end
            ) as recency_rank
        from suppressions
    ) as ranked
    where recency_rank = 1

),

deletions as (

    select requests.profile_id, max(requests.requested_at) as requested_at
    from {{ ref('int_deletion_requests__attributed') }} as requests
    cross join as_of
    where requests.profile_id is not null
        and (requests.requested_at is null or requests.requested_at <= as_of.as_of_at)
    group by requests.profile_id

),

grid as (

    select profiles.profile_id, channels.channel
    from profiles
    cross join channels

),

decided as (

    select
        grid.profile_id,
        grid.channel,
        case
            when deletions.profile_id is not null then 'deleted'
            when latest_suppression.profile_id is not null
                and (latest_consent.occurred_at is null
                     or latest_suppression.occurred_at >= latest_consent.occurred_at)
                then 'suppressed'
            when latest_consent.status is not null then 'consent_event'
            else 'none'
        end as decided_by,
        deletions.requested_at,
        latest_suppression.reason as suppression_reason,
        latest_suppression.occurred_at as suppressed_at,
        latest_consent.status as consent_status,
        latest_consent.source as consent_source,
        latest_consent.occurred_at as consent_at
    from grid
    left join deletions
        on grid.profile_id = deletions.profile_id
    left join latest_suppression
        on grid.channel = 'email' and grid.profile_id = latest_suppression.profile_id
    left join latest_consent
        on grid.profile_id = latest_consent.profile_id and grid.channel = latest_consent.channel

)

select
    profile_id,
    channel,
    case decided_by
        when 'deleted' then 'revoked'
        when 'suppressed' then 'revoked'
        when 'consent_event' then consent_status
        else 'not_granted'
    end as status,
    case decided_by
        when 'deleted' then 'deletion_requested'
        when 'suppressed' then suppression_reason
        when 'consent_event' then
            case
                when consent_status = 'granted' then 'opted_in'
                when consent_source like '%unsub%' then 'unsubscribed'
                when consent_source like '%spam%' or consent_source like '%complaint%' then 'spam_report'
                when consent_source like '%bounce%' then 'bounced'
                else 'manual'
            end
        else 'never_granted'
    end as reason,
    case decided_by
        when 'deleted' then 'deletion_request'
        when 'suppressed' then 'email_event'
        when 'consent_event' then 'consent_event'
    end as decided_by,
    case decided_by
        when 'consent_event' then consent_source
        when 'suppressed' then 'esp'
        when 'deleted' then 'deletion_request'
    end as source,
    case decided_by
        when 'deleted' then requested_at
        when 'suppressed' then suppressed_at
        when 'consent_event' then consent_at
    end as updated_at
from decided
