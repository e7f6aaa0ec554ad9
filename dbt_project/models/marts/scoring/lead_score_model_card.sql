-- The model card of the predictive lead score: everything int_lead_scores__model knows
-- about its training run except the pickled model itself, and when it was fitted: the
-- model is refitted every outflow_lead_model_refit_days (int_lead_scores__refit_schedule)
-- and scores as_of with the kept fit in between.
select
    status,
    status_reason,
    seed,
    label_window_days,
    train_cutoffs,
    test_cutoff,
    {{ outflow_as_of() }} as score_cutoff,
    fit_id,
    fitted_as_of,
    {{ dbt.datediff('fitted_as_of', outflow_as_of(), 'day') }} as fit_age_days,
    {{ dbt.dateadd('day', lead_model_refit_days(), 'fitted_as_of') }} as refit_due_at,
    model,
    features,
    categorical_features,
    n_train,
    n_train_converted,
    n_test,
    n_test_converted,
    base_rate,
    auc,
    baseline_auc,
    brier,
    baseline_brier,
    log_loss,
    cv_auc,
    calibration,
    top_contributions,
    {{ outflow_as_of() }} as as_of_at
from {{ ref('int_lead_scores__model') }}
