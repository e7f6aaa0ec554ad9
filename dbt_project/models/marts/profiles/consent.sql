-- Consent state per profile and channel (email, sms, ads): the one place that decides
-- whether a profile may be contacted. Rules (documented in _profiles.yml):
--   1. a deletion request revokes every channel for good (reason deletion_requested);
--   2. else the latest signal decides: consent events (granted / revoked) and, for
--      email, ESP suppressions (unsubscribe, spam report, hard bounce) which revoke.
--      A grant after a suppression wins (the person opted in again); on equal
--      timestamps the revoke wins;
--   3. a revoked row carries the cause: the earliest revoking signal since the last
--      grant (an ESP webhook revoke echoing an unsubscribe 30 s later is still
--      'unsubscribed'); a consent-event revoke's reason comes from its source
--      (unsub / spam|complaint / bounce keywords, else manual);
--   4. no signal at all: not_granted / never_granted.
-- Signals after outflow_as_of() are ignored.
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

consent_signals as (

    select
        events.profile_id,
        events.channel,
        events.status,
        case
            when events.status = 'granted' then 'opted_in'
            when events.source like '%unsub%' then 'unsubscribed'
            when events.source like '%spam%' or events.source like '%complaint%' then 'spam_report'
            when events.source like '%bounce%' then 'bounced'
            else 'manual'
        end as reason,
        'consent_event' as decided_by,
        events.source,
        events.occurred_at
    from {{ ref('int_consent_events__attributed') }} as events
    cross join as_of
    where events.profile_id is not null
        and events.channel in ('email', 'sms', 'ads')
        and events.status in ('granted', 'revoked')
        and events.occurred_at <= as_of.as_of_at

),

suppression_signals as (

    select
        events.profile_id,
        'email' as channel,
        'revoked' as status,
        case events.event_type
            when 'spam_report' then 'spam_report'
            when 'unsubscribe' then 'unsubscribed'
            when 'bounce' then 'bounced'
        end as reason,
        'email_event' as decided_by,
        'esp' as source,
        events.occurred_at
    from {{ ref('int_email_events__attributed') }} as events
    cross join as_of
    where events.profile_id is not null
        and (events.event_type in ('spam_report', 'unsubscribe')
             or (events.event_type = 'bounce' and events.is_hard_bounce))
        and events.occurred_at <= as_of.as_of_at

),

signals as (

    select * from consent_signals
    union all
    select * from suppression_signals

),

ranked as (

    select
        signals.*,
        -- latest first; on a tie the revoke, and an ESP suppression before its echo
        row_number() over (
            partition by profile_id, channel
            order by occurred_at desc,
                case status when 'revoked' then 0 else 1 end,
                case decided_by when 'email_event' then 0 else 1 end,
                reason
        ) as recency_rank,
        max(case when status = 'granted' then occurred_at end)
            over (partition by profile_id, channel) as last_granted_at
    from signals

),

latest as (

    select * from ranked where recency_rank = 1

),

-- For revoked rows: the earliest revoking signal since the last grant is the cause.
causes as (

    select profile_id, channel, reason, decided_by, source, occurred_at
    from (
        select
            ranked.*,
            row_number() over (
                partition by profile_id, channel
                order by occurred_at,
                    case decided_by when 'email_event' then 0 else 1 end,
                    reason
            ) as cause_rank
        from ranked
        where status = 'revoked'
            and (last_granted_at is null or occurred_at >= last_granted_at)
    ) as revokes
    where cause_rank = 1

),

deletions as (

    select requests.profile_id, min(requests.requested_at) as requested_at
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

)

select
    grid.profile_id,
    grid.channel,
    case
        when deletions.profile_id is not null then 'revoked'
        when latest.status is null then 'not_granted'
        else latest.status
    end as status,
    case
        when deletions.profile_id is not null then 'deletion_requested'
        when latest.status is null then 'never_granted'
        when latest.status = 'granted' then 'opted_in'
        else causes.reason
    end as reason,
    case
        when deletions.profile_id is not null then 'deletion_request'
        when latest.status = 'granted' then latest.decided_by
        else causes.decided_by
    end as decided_by,
    case
        when deletions.profile_id is not null then 'deletion_request'
        when latest.status = 'granted' then latest.source
        else causes.source
    end as source,
    case
        when deletions.profile_id is not null then deletions.requested_at
        when latest.status = 'granted' then latest.occurred_at
        else causes.occurred_at
    end as updated_at
from grid
left join deletions
    on grid.profile_id = deletions.profile_id
left join latest
    on grid.profile_id = latest.profile_id and grid.channel = latest.channel
left join causes
    on grid.profile_id = causes.profile_id and grid.channel = causes.channel
