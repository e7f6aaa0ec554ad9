"""A lead list in, a model-ready frame out: delimiter, label, and what each column is."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from orchestration.scoring.errors import ScoringInputError

DELIMITERS = ",;\t|"
POSITIVE_WORDS = {"1", "1.0", "yes", "y", "true", "t", "converted", "won", "positive"}
NEGATIVE_WORDS = {"0", "0.0", "no", "n", "false", "f", "not converted", "lost", "negative"}
# A text column is a date/time when this share of its non-empty values parse as one.
DATETIME_SHARE = 0.95
# Categories rarer than this are pooled, so a high-cardinality column cannot memorise rows.
MIN_CATEGORY_COUNT = 20
# Missing text is a category of its own: "not answered" often says something.
MISSING = "(missing)"


def read_leads_csv(path: Path) -> pl.DataFrame:
    """Read a CSV whose delimiter (, ; tab |) is detected from its first lines. All text, typed later."""
    if not path.is_file():
        raise ScoringInputError(f"{path}: no such file")
    head = path.open(encoding="utf-8-sig", errors="replace").read(64_000)
    if not head.strip():
        raise ScoringInputError(f"{path} is empty: expected a header line and at least one lead")
    try:
        delimiter = csv.Sniffer().sniff(head.splitlines()[0], delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    frame = pl.read_csv(
        path, separator=delimiter, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=True
    )
    # Some exports end every line with the delimiter: an unnamed, empty last column.
    blank = [c for c in frame.columns if (not c.strip() or c.startswith("_duplicated_")) and frame[c].null_count() == frame.height]
    frame = frame.drop(blank)
    if frame.height == 0:
        raise ScoringInputError(f"{path} has a header but no rows: expected at least one lead")
    return frame


def _clean_text(series: pl.Series) -> pl.Series:
    """Trim and case-fold text (`Google` and `google` are one source); empty means missing."""
    cleaned = series.cast(pl.String).str.strip_chars().str.to_lowercase()
    return cleaned.replace("", None)


def binary_label(series: pl.Series, positive: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Labels as 0/1, a mask of rows that have one, and the value read as positive (converted)."""
    name = series.name
    text = _clean_text(series)
    present = text.is_not_null().to_numpy()
    values = sorted(set(text.drop_nulls().to_list()))
    if len(values) > 2:
        shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
        raise ScoringInputError(
            f"label column {name!r} must be binary (converted or not), it has {len(values)} values: {shown}"
        )
    if len(values) < 2:
        only = values[0] if values else "nothing"
        raise ScoringInputError(
            f"label column {name!r} has a single class ({only}): scoring needs both converted and "
            f"not-converted leads"
        )
    if positive is not None:
        positive = positive.strip().lower()
        if positive not in values:
            raise ScoringInputError(f"--positive {positive!r} is not a value of label column {name!r} ({', '.join(values)})")
    else:
        known = [v for v in values if v in POSITIVE_WORDS]
        if len(known) != 1 or not set(values) - {known[0]} <= NEGATIVE_WORDS:
            raise ScoringInputError(
                f"label column {name!r} has values {values[0]!r} and {values[1]!r}: say which one means "
                f"converted with --positive VALUE"
            )
        positive = known[0]
    y = (text == positive).fill_null(False).to_numpy().astype(np.int8)
    return y, present, positive


def parse_datetime(series: pl.Series) -> pl.Series | None:
    """The column as datetimes when nearly all its values are dates/times, else None."""
    if series.dtype in (pl.Datetime, pl.Date):
        return series.cast(pl.Datetime)
    text = series.cast(pl.String).str.strip_chars().replace("", None)
    present = text.drop_nulls()
    if present.len() == 0 or not present.head(50).str.contains(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}/\d{1,2}/\d{2,4}").all():
        return None
    try:
        parsed = text.str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.PolarsError:
        return None
    return parsed if parsed.drop_nulls().len() >= DATETIME_SHARE * present.len() else None


def _as_number(series: pl.Series) -> pl.Series | None:
    if series.dtype.is_numeric():
        # Already numbers (the warehouse's columns): the same floats as the text round trip below.
        return series.cast(pl.Float64)
    text = series.cast(pl.String).str.strip_chars().replace("", None)
    numbers = text.cast(pl.Float64, strict=False)
    return numbers if numbers.null_count() == text.null_count() else None


@dataclass
class ColumnPlan:
    """What each column of a lead list is, and why a column is not used."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical + self.datetime


def plan_columns(
    frame: pl.DataFrame,
    label: str,
    id_column: str | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    time_column: str | None = None,
    outcome_time_column: str | None = None,
) -> ColumnPlan:
    """Type every column (numeric, categorical, date/time) and drop what cannot be a feature."""
    for flag, column in (("--label", label), ("--id", id_column), ("--time", time_column),
                         ("--outcome-time", outcome_time_column), *(("--exclude", c) for c in exclude)):
        if column is not None and column not in frame.columns:
            raise ScoringInputError(f"{flag} column {column!r} is not in the file; its columns are: {', '.join(frame.columns)}")
    plan = ColumnPlan()
    roles = {label: "the label", id_column: "the id", outcome_time_column: "the outcome time",
             time_column: "the split time (used to order leads, not as a feature)"}
    for column in frame.columns:
        series = frame[column]
        if column in roles:
            plan.dropped[column] = roles[column]
        elif column in exclude:
            plan.dropped[column] = "excluded (--exclude)"
        elif series.null_count() == frame.height or series.cast(pl.String).n_unique() <= 1:
            plan.dropped[column] = "constant or empty"
        elif (numbers := _as_number(series)) is not None:
            integral = numbers.drop_nulls().round(0).eq(numbers.drop_nulls()).all()
            if integral and numbers.n_unique() == frame.height and frame.height > 50:
                plan.dropped[column] = "identifier (a distinct whole number on every row)"
            else:
                plan.numeric.append(column)
        elif parse_datetime(series) is not None:
            plan.datetime.append(column)
        elif series.n_unique() >= 0.9 * frame.height and frame.height > 50:
            plan.dropped[column] = "identifier (distinct text on nearly every row)"
        else:
            plan.categorical.append(column)
    if not plan.features:
        raise ScoringInputError(f"no feature column is left after dropping: {', '.join(f'{c} ({r})' for c, r in plan.dropped.items())}")
    return plan


def model_frame(frame: pl.DataFrame, plan: ColumnPlan) -> pd.DataFrame:
    """The feature columns as a pandas frame: numbers as float (NaN missing), text case-folded
    with None missing, dates as days since 1970 (so the model sees an order, not a string)."""
    columns: dict[str, object] = {}
    for column in plan.numeric:
        columns[column] = _as_number(frame[column]).to_numpy().astype(float)
    for column in plan.categorical:
        columns[column] = _clean_text(frame[column]).fill_null(MISSING).to_numpy().astype(object)
    for column in plan.datetime:
        parsed = parse_datetime(frame[column])
        columns[column] = (parsed.dt.epoch("s").cast(pl.Float64) / 86_400).to_numpy().astype(float)
    return pd.DataFrame(columns, index=pd.RangeIndex(frame.height))
