"""Resolve raw contacts to profiles: deterministic keys first, then Splink.

1. Deterministic: contacts sharing a valid normalised email or a valid E.164 phone
   are the same person, unless the key is shared by so many contacts that it is a
   shared inbox or a switchboard (`max_contacts_per_key`).
2. Probabilistic: Splink (DuckDB backend) scores pairs on names, date of birth and
   address; pairs at or above `match_threshold` are linked.
3. Connected components over both kinds of link give the clusters. A cluster's
   `profile_id` is derived from its oldest member (earliest created_at, then key), so
   it stays put when new records join the cluster.

Everything runs in a private in-memory DuckDB; the caller passes an Arrow table in
and gets an Arrow table out.
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa
from pydantic import BaseModel, Field
from splink import DuckDBAPI, Linker
from splink.clustering import cluster_pairwise_predictions_at_threshold

from orchestration.identity import splink_model

log = logging.getLogger(__name__)

# Columns the resolver needs from stg_crm__contacts.
INPUT_COLUMNS = (
    "contact_key",
    "source_system",
    "contact_id",
    "email",
    "email_is_valid",
    "phone_e164",
    "phone_is_valid",
    "first_name",
    "first_name_canonical",
    "last_name_normalized",
    "street_address",
    "city",
    "postal_code",
    "date_of_birth",
    "created_at",
)

OUTPUT_SCHEMA = pa.schema(
    [
        ("contact_key", pa.string()),
        ("source_system", pa.string()),
        ("contact_id", pa.string()),
        ("profile_id", pa.string()),
        ("match_rule", pa.string()),
        ("cluster_size", pa.int64()),
    ]
)


class MatchSettings(BaseModel):
    """Knobs of identity resolution (dbt vars `outflow_identity_*`)."""

    match_threshold: float = Field(0.8, gt=0, le=1)
    # Below this many contacts there are too few pairs to train a model on.
    min_records_for_probabilistic: int = Field(200, ge=2)
    max_contacts_per_key: int = Field(10, ge=2)
    # Pair budget of one blocking rule, per contact: rules above it are narrowed
    # (splink_model.budgeted_blocking_keys), so the work grows with the contacts, not their square.
    max_pairs_per_record: float = Field(3.0, gt=0)
    u_max_pairs: float = Field(5e6, gt=0)
    # Known matches (shared email/phone) needed to learn m from labels instead of EM.
    min_labelled_pairs: int = Field(100, ge=1)
    seed: int = 42
    probabilistic: bool = True


def resolve_contacts(contacts: pa.Table, settings: MatchSettings | None = None) -> pa.Table:
    settings = settings or MatchSettings()
    # Splink warns per untrainable comparison level; one line of ours says what matters.
    logging.getLogger("splink").setLevel(logging.ERROR)
    missing = [c for c in INPUT_COLUMNS if c not in contacts.column_names]
    if missing:
        raise ValueError(f"identity resolution needs columns {missing} in its input")

    con = duckdb.connect()
    try:
        con.register("contacts_in", contacts.select(list(INPUT_COLUMNS)))
        _build_nodes(con)
        n_nodes = con.execute("select count(*) from nodes").fetchall()[0][0]
        if n_nodes == 0:
            return OUTPUT_SCHEMA.empty_table()
        _build_deterministic_edges(con, settings.max_contacts_per_key)
        db_api = DuckDBAPI(con)
        _add_probabilistic_edges(con, db_api, n_nodes, settings)
        return _clusters(con, db_api)
    finally:
        con.close()


def _build_nodes(con: duckdb.DuckDBPyConnection) -> None:
    # Matching features: lower-case, blanks as null, dates as ISO strings.
    con.execute(
        """
        create table nodes as
        select
            contact_key as unique_id,
            source_system,
            contact_id,
            created_at,
            -- Names as letters only: 'Soph ie' and 'sophie' are one name.
            nullif(regexp_replace(lower(first_name), '[^\\p{L}]', '', 'g'), '') as first_name,
            nullif(regexp_replace(lower(first_name_canonical), '[^\\p{L}]', '', 'g'), '')
                as first_name_canonical,
            nullif(regexp_replace(lower(last_name_normalized), '[^\\p{L}]', '', 'g'), '') as last_name,
            strftime(try_cast(date_of_birth as date), '%Y-%m-%d') as dob,
            nullif(regexp_replace(lower(trim(street_address)), '\\s+', ' ', 'g'), '') as street,
            nullif(lower(trim(city)), '') as city,
            nullif(replace(upper(trim(cast(postal_code as varchar))), ' ', ''), '') as postal_code,
            case when email_is_valid then email end as email,
            -- A possible-but-invalid number (truncated, say) is shared by strangers.
            case when phone_is_valid then phone_e164 end as phone
        from contacts_in
        """
    )


def _build_deterministic_edges(con: duckdb.DuckDBPyConnection, max_per_key: int) -> None:
    # Star edges (every member to the group's smallest id) keep the edge count linear.
    con.execute(
        f"""
        create table edges as
        with keyed as (
            select unique_id, 'email' as rule, email as key from nodes where email is not null
            union all
            select unique_id, 'phone' as rule, phone as key from nodes where phone is not null
        ),
        groups as (
            select rule, key, min(unique_id) as anchor
            from keyed
            group by rule, key
            having count(*) between 2 and {int(max_per_key)}
        )
        select g.anchor as unique_id_l, k.unique_id as unique_id_r, k.rule,
               1.0::double as match_probability
        from keyed k join groups g using (rule, key)
        where k.unique_id <> g.anchor
        """
    )


def _add_probabilistic_edges(
    con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, n_nodes: int, settings: MatchSettings
) -> None:
    if not settings.probabilistic:
        return
    if n_nodes < settings.min_records_for_probabilistic:
        log.warning(
            "identity: %s contacts is below min_records_for_probabilistic=%s; "
            "matching on email and phone only",
            n_nodes,
            settings.min_records_for_probabilistic,
        )
        return
    con.execute(
        f"create table splink_input as select {', '.join(splink_model.MODEL_COLUMNS)} from nodes"
    )
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
        return
    predictions = linker.inference.predict(
        threshold_match_probability=settings.match_threshold, warning_mode="never"
    )
    con.execute(
        f"""
        insert into edges
        select unique_id_l, unique_id_r, 'probabilistic', match_probability
        from {predictions.physical_name}
        """
    )


def _train(
    con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, linker: Linker, settings: MatchSettings
) -> None:
    """Prior from near-certain rules, u from random pairs, m from known matches.

    Contacts linked by a shared email or phone are labelled matches: their name, date
    of birth and address agreement is what m measures. Without enough of them (a
    dataset with no emails or phones) m is learnt by expectation maximisation.
    """
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


def _clusters(con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI) -> pa.Table:
    clustered = cluster_pairwise_predictions_at_threshold(
        db_api.register("nodes"),
        db_api.register("edges"),
        db_api=db_api,
        node_id_column_name="unique_id",
        edge_id_column_name_left="unique_id_l",
        edge_id_column_name_right="unique_id_r",
    )
    return con.sql(
        f"""
        with clusters as (
            select unique_id, cluster_id from {clustered.physical_name}
        ),
        members as (
            select n.unique_id, n.source_system, n.contact_id, n.created_at, c.cluster_id
            from nodes n join clusters c using (unique_id)
        ),
        anchors as (
            select cluster_id,
                   arg_min(unique_id, (created_at is null, created_at, unique_id)) as anchor_id,
                   count(*) as cluster_size
            from members group by cluster_id
        ),
        best_rule as (
            -- The strongest link a contact has: email, then phone, then probabilistic.
            select unique_id,
                   arg_min(rule, case rule when 'email' then 1 when 'phone' then 2 else 3 end)
                       as match_rule
            from (select unique_id_r as unique_id, rule from edges
                  union all select unique_id_l, rule from edges)
            group by unique_id
        )
        select
            m.unique_id as contact_key,
            m.source_system,
            m.contact_id,
            'p_' || substr(md5(a.anchor_id), 1, 16) as profile_id,
            case when a.cluster_size = 1 then 'singleton' else coalesce(b.match_rule, 'probabilistic') end
                as match_rule,
            a.cluster_size
        from members m
        join anchors a using (cluster_id)
        left join best_rule b using (unique_id)
        order by m.unique_id
        """
    ).to_arrow_table().cast(OUTPUT_SCHEMA)
