-- Every snapshot of the predictive lead score in one place (docs/lead_scoring.md): the
-- training and held-out rows of the current fit (relative to its fitted_as_of) and the
-- score rows of as_of. A view: nothing in the build reads it, it is for people and tests.
{{ config(materialized='view') }}

select * exclude (fit_id, fitted_as_of)
from {{ ref('int_lead_scores__training_snapshots') }}
union all
select *
from {{ ref('int_lead_scores__score_snapshot') }}
