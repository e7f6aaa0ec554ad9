-- Every profile in every segment: the union of all seg_<name> models in this folder,
-- with each segment's owner and priority read from its yml (config.meta).
-- Profiles with a deletion request are dropped here, whatever a segment says.
-- is_primary marks each profile's most important segment (lowest priority number).
--
-- Adding a segment = seg_<name>.sql + its yml entry + one line below. dbt needs every
-- ref while parsing, before the graph that lists the seg_ models exists; the build
-- fails with the exact line to add if a seg_ model is missing here.
-- depends_on: {{ ref('seg_cart_abandoners') }}
-- depends_on: {{ ref('seg_lapsed_customers') }}
-- depends_on: {{ ref('seg_onboarding_nurture') }}
-- depends_on: {{ ref('seg_sales_ready_leads') }}
-- depends_on: {{ ref('seg_vip_customers') }}

with memberships as (

    {{ outflow_union_segments() }}

),

profiles as (

    select profile_id, is_deletion_requested from {{ ref('profiles') }}

)

select
    memberships.segment,
    memberships.profile_id,
    memberships.priority,
    memberships.owner,
    memberships.reason,
    row_number() over (
        partition by memberships.profile_id
        order by memberships.priority, memberships.segment
    ) = 1 as is_primary
from memberships
inner join profiles
    on memberships.profile_id = profiles.profile_id
where not profiles.is_deletion_requested
