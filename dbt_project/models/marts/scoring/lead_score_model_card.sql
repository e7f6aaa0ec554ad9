-- The model card of the predictive lead score: everything int_lead_scores__model knows
-- about its training run except the pickled model itself.
select
    status,
    status_reason,
    seed,
    label_window_days,
    train_cutoffs,
    test_cutoff,
    score_cutoff,
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
