"""Resolve raw contacts to profiles: deterministic keys first, then Splink.

1. Deterministic: contacts sharing a valid normalised email or a valid E.164 phone
   are the same person, unless the key is shared by so many contacts that it is a
   shared inbox or a switchboard (`max_contacts_per_key`).
2. Probabilistic: Splink (DuckDB backend) scores pairs on names, date of birth and
   address; pairs at or above `match_threshold` are linked (model_fit.py trains the
   model, links.py finds the links, incrementally in the dbt build).
3. Connected components (scipy) over both kinds of link give the clusters. A cluster's
   `profile_id` is derived from its oldest member (earliest created_at, then key), so
   it stays put when new records join the cluster.

Everything runs in a private in-memory DuckDB; the caller passes Arrow tables in
and gets an Arrow table out.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

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
# What clustering needs: the keys of the deterministic links and the age of each contact.
CLUSTER_COLUMNS = ("contact_key", "source_system", "contact_id", "email", "email_is_valid", "phone_e164",
                   "phone_is_valid", "created_at")

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
    # The dbt build keeps a fitted model this many days (model_fit.refit_reason).
    refit_days: int = Field(7, ge=1)


def resolve_contacts(contacts: pa.Table, settings: MatchSettings | None = None) -> pa.Table:
    """One pass without stored state: fit the model, link every pair, cluster.

    The dbt build runs the same three steps as three models, keeping the fit and the
    links between builds (int_identity__match_model, int_identity__links)."""
    from orchestration.identity.links import find_links
    from orchestration.identity.model_fit import fit_match_model

    settings = settings or MatchSettings()
    fitted = fit_match_model(contacts, settings)
    links = find_links(contacts, fitted.splink_model, settings)
    return cluster_contacts(contacts, links, settings)


def quiet_splink() -> None:
    # Splink warns per untrainable comparison level; one line of ours says what matters.
    logging.getLogger("splink").setLevel(logging.ERROR)


def require_columns(contacts: pa.Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in contacts.column_names]
    if missing:
        raise ValueError(f"{what} needs columns {missing} in its input")


def build_nodes(con: duckdb.DuckDBPyConnection, source: str = "contacts_in") -> None:
    """Table `nodes`: the matching features of every contact, and their fingerprint."""
    con.execute(
        f"""
        create or replace table nodes as
        with features as (
            select
                contact_key as unique_id,
                source_system,
                contact_id,
                created_at,
                -- Names as letters only: 'Soph ie' and 'sophie' are one name.
                nullif(regexp_replace(lower(first_name), '[^\\p{{L}}]', '', 'g'), '') as first_name,
                nullif(regexp_replace(lower(first_name_canonical), '[^\\p{{L}}]', '', 'g'), '')
                    as first_name_canonical,
                nullif(regexp_replace(lower(last_name_normalized), '[^\\p{{L}}]', '', 'g'), '') as last_name,
                strftime(try_cast(date_of_birth as date), '%Y-%m-%d') as dob,
                -- runs of white space as one space; the replace only where there is one (3x faster)
                nullif(case when regexp_matches(street_address, '\\s\\s|[\\t\\n\\r\\f\\v]')
                            then regexp_replace(lower(trim(street_address)), '\\s+', ' ', 'g')
                            else lower(trim(street_address)) end, '') as street,
                nullif(lower(trim(city)), '') as city,
                nullif(replace(upper(trim(cast(postal_code as varchar))), ' ', ''), '') as postal_code,
                case when email_is_valid then email end as email,
                -- A possible-but-invalid number (truncated, say) is shared by strangers.
                case when phone_is_valid then phone_e164 end as phone
            from {source}
        )
        select *,
            -- What the Splink model compares; a contact whose fingerprint changed is re-linked.
            -- DuckDB's 64-bit hash, 6x cheaper than md5 over a JSON text; a fingerprint written
            -- another way (an older outflow or DuckDB) differs from every new one, so that run
            -- links every contact again, as a full pass would.
            'h:' || hash(first_name, first_name_canonical, last_name, dob, street, city, postal_code)::varchar
                as features_hash
        from features
        """
    )


def build_deterministic_edges(con: duckdb.DuckDBPyConnection, max_per_key: int, id_column: str = "unique_id") -> None:
    """Table `edges` from `nodes`: contacts sharing a valid email or phone, as their `id_column`."""
    # Star edges (every member to the group's smallest id) keep the edge count linear.
    con.execute(
        f"""
        create or replace table edges as
        with keyed as (
            select {id_column} as id, 'email' as rule, email as key from nodes where email is not null
            union all
            select {id_column} as id, 'phone' as rule, phone as key from nodes where phone is not null
        ),
        groups as (
            select rule, key, min(id) as anchor
            from keyed
            group by rule, key
            having count(*) between 2 and {int(max_per_key)}
        )
        select g.anchor as unique_id_l, k.id as unique_id_r, k.rule,
               1.0::double as match_probability
        from keyed k join groups g using (rule, key)
        where k.id <> g.anchor
        """
    )


def cluster_contacts(contacts: pa.Table, links: pa.Table, settings: MatchSettings) -> pa.Table:
    """Profiles: connected components of the deterministic links and the probabilistic
    `links` (contact_key, linked_contact_keys; links.py) over `contacts`."""
    require_columns(contacts, CLUSTER_COLUMNS, "identity resolution")
    if contacts.num_rows == 0:
        return OUTPUT_SCHEMA.empty_table()
    con = duckdb.connect()
    try:
        # Each contact's row number is its node in the graph: edges carry integers, not keys.
        con.register("contacts_in", contacts.select(list(CLUSTER_COLUMNS))
                     .append_column("idx", pa.array(np.arange(contacts.num_rows, dtype=np.int64))))
        con.execute(
            """
            create table nodes as
            select idx, contact_key as unique_id, source_system, contact_id, created_at,
                   case when email_is_valid then email end as email,
                   case when phone_is_valid then phone_e164 end as phone
            from contacts_in
            """
        )
        build_deterministic_edges(con, settings.max_contacts_per_key, id_column="idx")
        con.register("links_in", links.select(["contact_key", "linked_contact_keys"]))
        # Links are stored both ways; one direction is an edge. Both ends must still exist.
        con.execute(
            """
            insert into edges
            select a.idx, b.idx, 'probabilistic', null
            from (select contact_key, unnest(linked_contact_keys) as linked from links_in) l
            join nodes a on a.unique_id = l.contact_key
            join nodes b on b.unique_id = l.linked
            where l.contact_key < l.linked
            """
        )
        return _clusters(con, contacts.num_rows)
    finally:
        con.close()


def _clusters(con: duckdb.DuckDBPyConnection, n: int) -> pa.Table:
    """Profiles from `nodes` and `edges` (node numbers 0..n-1): connected components (scipy,
    one pass), each cluster's anchor and each contact's strongest link."""
    edges = con.sql("select unique_id_l, unique_id_r, "
                    "case rule when 'email' then 1 when 'phone' then 2 else 3 end::tinyint as strength "
                    "from edges").to_arrow_table()
    left = edges["unique_id_l"].to_numpy()
    right = edges["unique_id_r"].to_numpy()
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, cluster_id = connected_components(graph, directed=False)
    # The strongest link a contact has: email (1), then phone (2), then probabilistic (3).
    strongest = np.full(n, 3, dtype=np.int8)
    strength = edges["strength"].to_numpy()
    np.minimum.at(strongest, left, strength)
    np.minimum.at(strongest, right, strength)
    con.register("graph", pa.table({
        "idx": pa.array(np.arange(n, dtype=np.int64)),
        "cluster_id": pa.array(cluster_id),
        "strongest": pa.array(strongest),
        "cluster_size": pa.array(np.bincount(cluster_id)[cluster_id].astype(np.int64)),
    }))
    return con.sql(
        """
        with members as (
            select nodes.unique_id, nodes.source_system, nodes.contact_id, nodes.created_at, graph.*
            from nodes join graph using (idx)
        ),
        anchors as (
            select cluster_id, arg_min(unique_id, (created_at is null, created_at, unique_id)) as anchor_id
            from members
            where cluster_size > 1
            group by cluster_id
        )
        select
            m.unique_id as contact_key,
            m.source_system,
            m.contact_id,
            'p_' || substr(md5(coalesce(a.anchor_id, m.unique_id)), 1, 16) as profile_id,
            case
                when m.cluster_size = 1 then 'singleton'
                when m.strongest = 1 then 'email'
                when m.strongest = 2 then 'phone'
                else 'probabilistic'
            end as match_rule,
            m.cluster_size
        from members m
        left join anchors a using (cluster_id)
        """
    ).to_arrow_table().cast(OUTPUT_SCHEMA)
