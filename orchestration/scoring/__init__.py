"""Predictive lead scoring: one pipeline for the warehouse and for `outflow score-file`.

frame.py reads a lead list and decides what every column is; leakage.py refuses
columns that give the answer away; model.py selects, fits and evaluates the model.
"""

from orchestration.scoring.errors import LeakageError, ScoringInputError
from orchestration.scoring.frame import ColumnPlan, binary_label, plan_columns, read_leads_csv
from orchestration.scoring.leakage import check_leakage
from orchestration.scoring.model import Evaluation, evaluate, stratified_split, time_split

__all__ = [
    "ColumnPlan",
    "Evaluation",
    "LeakageError",
    "ScoringInputError",
    "binary_label",
    "check_leakage",
    "evaluate",
    "plan_columns",
    "read_leads_csv",
    "stratified_split",
    "time_split",
]
