"""Train the Splink model, and decide when a stored one is due for a refit.

Training reads every contact (blocking-rule budgets, u from random pairs, m from the
deterministic links), which at a million contacts costs more than linking one day's
new contacts. The dbt build therefore keeps a fit for `refit_days`
(int_identity__match_model) and links new and changed contacts with it; the links
are then exactly those a fresh link pass with the same model would find.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
from pydantic import BaseModel
from splink import DuckDBAPI, Linker

from orchestration.identity import splink_model
from orchestration.identity.resolve import (
    INPUT_COLUMNS,
    MatchSettings,
    build_deterministic_edges,
    build_nodes,
    quiet_splink,
    require_columns,
)

log = logging.getLogger(__name__)

MODEL_NAME = "contacts"
MODEL_SCHEMA = pa.schema(
    [
        ("model_name", pa.string()),
        ("model_id", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("splink_model", pa.string()),
        ("contacts_at_fit", pa.int64()),
        ("fitted_as_of", pa.timestamp("us")),
        ("refit_due_at", pa.timestamp("us")),
        ("settings_key", pa.string()),
    ]
)
# Settings a fit depends on (match_threshold only filters its predictions).
FIT_SETTINGS = ("min_records_for_probabilistic", "max_contacts_per_key", "max_pairs_per_record", "u_max_pairs",
                "min_labelled_pairs", "seed", "probabilistic")


class FittedModel(BaseModel):
    """A trained Splink model (its JSON), or why matching is deterministic only."""

    status: str  # fitted | too_few_contacts | training_failed | disabled
    reason: str | None = None
    splink_model: str | None = None
    contacts: int = 0

    @property
    def model_id(self) -> str:
        return _md5(self.splink_model or f"deterministic:{self.status}")


def fit_match_model(contacts: pa.Table, settings: MatchSettings) -> FittedModel:
    """Prior from near-certain rules, u from random pairs, m from known matches.

    Contacts linked by a shared email or phone are labelled matches: their name, date
    of birth and address agreement is what m measures. Without enough of them (a
    dataset with no emails or phones) m is learnt by expectation maximisation.
    """
    quiet_splink()
    require_columns(contacts, INPUT_COLUMNS, "identity resolution")
    if not settings.probabilistic:
        return FittedModel(status="disabled", reason="probabilistic matching is off", contacts=contacts.num_rows)
    n_nodes = contacts.num_rows
    if n_nodes < settings.min_records_for_probabilistic:
        log.warning("identity: %s contacts is below min_records_for_probabilistic=%s; "
                    "matching on email and phone only", n_nodes, settings.min_records_for_probabilistic)
        return FittedModel(status="too_few_contacts", contacts=n_nodes,
                           reason=f"{n_nodes} contacts, below min_records_for_probabilistic="
                                  f"{settings.min_records_for_probabilistic}")
    con = duckdb.connect()
    try:
        con.register("contacts_in", contacts.select(list(INPUT_COLUMNS)))
        build_nodes(con)
        build_deterministic_edges(con, settings.max_contacts_per_key)
        db_api = DuckDBAPI(con)
        con.execute(f"create table splink_input as select {', '.join(splink_model.MODEL_COLUMNS)} from nodes")
        rules = splink_model.budgeted_blocking_keys(con, n_nodes, settings.max_pairs_per_record, "splink_input")
        for rule in rules:
            if rule["used"] != rule["keys"]:
                log.info("identity: blocking on %s narrowed to %s (%s pairs; budget %.0f per contact)",
                         ", ".join(rule["keys"]), ", ".join(rule["used"]), f"{rule['pairs']:,}",
                         settings.max_pairs_per_record)
        linker = Linker(db_api.register("splink_input"), splink_model.settings([r["used"] for r in rules]),
                        log_level=None)
        try:
            _train(con, db_api, linker, settings)
        except Exception as exc:  # Splink raises ValueError when a level cannot be estimated.
            log.warning("identity: probabilistic model could not be trained (%s: %s); "
                        "matching on email and phone only", type(exc).__name__, exc)
            return FittedModel(status="training_failed", reason=f"{type(exc).__name__}: {exc}", contacts=n_nodes)
        return FittedModel(status="fitted", contacts=n_nodes,
                           splink_model=json.dumps(linker.misc.save_model_to_json(), sort_keys=True))
    finally:
        con.close()


def _train(con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, linker: Linker, settings: MatchSettings) -> None:
    training = linker.training
    training.estimate_probability_two_random_records_match(
        splink_model.deterministic_training_rules(), recall=0.7
    )
    training.estimate_u_using_random_sampling(max_pairs=settings.u_max_pairs, seed=settings.seed)
    n_labels = con.execute("select count(*) from edges").fetchall()[0][0]
    if n_labels >= settings.min_labelled_pairs:
        training.estimate_m_from_pairwise_labels(
            db_api.register(con.sql("select unique_id_l, unique_id_r from edges").to_arrow_table())
        )
        return
    for block in splink_model.em_training_blocks():
        training.estimate_parameters_using_expectation_maximisation(block)


def settings_key(settings: MatchSettings) -> str:
    """Fingerprint of what shapes a fit: the fit settings and the model as coded
    (comparisons, blocking rules), so a changed comparison refits too."""
    coded = splink_model.settings().create_settings_dict("duckdb")
    fit = {name: getattr(settings, name) for name in FIT_SETTINGS}
    return _md5(json.dumps({"settings": fit, "model": coded}, sort_keys=True, default=str))


def refit_reason(stored: dict | None, settings: MatchSettings, as_of: datetime, n_contacts: int) -> str | None:
    """Why the stored model (a MODEL_SCHEMA row) must be refitted, or None to keep it."""
    if stored is None:
        return "no stored model"
    if stored["settings_key"] != settings_key(settings):
        return "identity settings or the coded model changed"
    if as_of < stored["fitted_as_of"]:
        return "as_of is before the stored fit"
    if as_of >= stored["refit_due_at"]:
        return f"fitted {settings.refit_days} or more days ago"
    if stored["status"] == "too_few_contacts" and n_contacts >= settings.min_records_for_probabilistic:
        return "enough contacts for probabilistic matching"
    at_fit = max(stored["contacts_at_fit"], 1)
    if n_contacts > 2 * at_fit or 2 * n_contacts < at_fit:
        return f"contacts went from {at_fit:,} at the fit to {n_contacts:,}"
    return None


def model_row(fitted: FittedModel, settings: MatchSettings, as_of: datetime) -> pa.Table:
    """The stored form of a fit: one MODEL_SCHEMA row."""
    return pa.Table.from_pylist([{
        "model_name": MODEL_NAME, "model_id": fitted.model_id, "status": fitted.status, "reason": fitted.reason,
        "splink_model": fitted.splink_model, "contacts_at_fit": fitted.contacts, "fitted_as_of": as_of,
        "refit_due_at": as_of + timedelta(days=settings.refit_days), "settings_key": settings_key(settings),
    }], schema=MODEL_SCHEMA)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()
