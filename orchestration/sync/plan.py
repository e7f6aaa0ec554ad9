"""The plan: what to send, computed in the warehouse as one SQL query built with sqlglot.

Model rows (primary key, mapped fields, a hash over the mapped fields only) are
joined to this sync's rows of outflow.sync_state; each row of the result carries
an action and the destination operation it becomes:

  add     in the model, not in state (or removed earlier)
  change  synced with a different hash; or rejected and its hash changed since
  retry   failed, attempts < max_attempts (or its hash changed since); or pending (sent
          by a run that died before recording the answer)
  remove  in state with an acknowledged write (first_synced_at set), no longer in the
          model; only mirror/membership; a failed remove is retried like any failure;
          a pending record gone from the model is removed too (it may be in the tool)
  resync  full resync only: a model row this sync already knows, sent again

Holdout (spec.holdout): a model row whose md5(salt | key) falls in the held-out share, or
that outflow.sync_holdout already records, is never added (nor resynced) while this sync
has no state for it; what the tool already holds before the holdout was set is left as it
is. `holdout_assignments_query` lists the newly held-out keys the run records.

Mode -> operation: upsert UPSERT; update UPDATE (every unseen or changed row is sent;
the tool rejects unknown records with 'not found', and they are retried only when
their data changes); insert INSERT (adds, retries and changed rejects only: a synced
record is never sent again); mirror UPSERT + DELETE; membership ADD_MEMBER + REMOVE_MEMBER.

User SQL is never concatenated: the validated sqlglot trees of `fields`/`where` are
embedded in the query, which is then rendered for the target dialect.
"""

from __future__ import annotations

from sqlglot import exp

from orchestration.sync.spec import DIALECT, Mode, SyncSpec, parse_fragment

STATE_SCHEMA = "outflow"
STATE_TABLE = "sync_state"
HOLDOUT_TABLE = "sync_holdout"
HELD_OUT = "_held_out"
PROFILE_KEY = "_profile_key"  # model_hashes_query: the profile key, when it is not the primary key
HOLDOUT_HEX_DIGITS = 8  # the bucket: the first 8 hex digits of the md5, 1 in 2**32 resolution
# The contact rule (dbt mart) and the engine's own list of deleted profiles: every plan
# reads the model through both, so no sync can send whom its channel does not allow.
RULE_SCHEMA, RULE_TABLE = "main", "contactable_profiles"
DELETED_TABLE = "deleted_profiles"

# Output columns of the plan (fields are f_0..f_n in SyncSpec.sent_fields() order, so
# destination field names never clash with ours or need quoting).
ACTION, OPERATION, KEY, HASH = "_action", "_operation", "_key", "_hash"
STATE_COLUMNS = {
    "_state_status": "status",
    "_state_attempts": "attempts",
    "_state_hash": "fields_hash",
    "_destination_id": "destination_id",
    "_first_synced_at": "first_synced_at",
    "_idempotency_key": "idempotency_key",
}
NULL_MARK = "~"  # stands for NULL in the canonical string; never produced by a value (see _canonical)
# fields_hash formats. h2 (written since 2026-11-25): "h2:" + DuckDB's 64-bit hash() of the
# mapping's signature and each sent field as VARCHAR. v1 (before): md5 of the canonical
# string, 32 hex digits, no prefix; still the hash of plans rendered for other dialects
# (portable). A v1 hash the upgrade could not translate (its record was not in the model)
# is kept behind LEGACY_MARK: it no longer matches, so that record is sent once if it
# comes back unchanged.
HASH_PREFIX, LEGACY_MARK = "h2:", "v1:"
LEGACY_HASH = "_legacy_hash"
# model_hashes_query keeps the h2 hash as hash()'s 64-bit number; plan_query makes its
# text. The text (~23 bytes, beyond DuckDB's 12-byte inline strings) written to the temp
# table and read back cost more than making it in the plan (docs/performance.md).
HASH_NUMBER = "_hash_number"


def field_column(i: int) -> str:
    return f"f_{i}"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _varchar(e: exp.Expression) -> exp.Expression:
    return exp.cast(e, exp.DataType.build("VARCHAR"))


def _str(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _canonical(spec: SyncSpec, table: str | None = None) -> exp.Expression:
    """Null-safe, injective string over the sent fields: a signature of the mapping, then
    per field `<len>:<value>` or `~` for NULL. Length prefixes make the concatenation
    unambiguous whatever the values contain; the signature re-sends everything when
    the mapping itself changes."""
    names = list(spec.sent_fields())
    parts: list[exp.Expression] = [_str("v1|" + ",".join(names) + "|")]
    for i in range(len(names)):
        v = _varchar(_col(field_column(i), table))
        parts.append(
            exp.Coalesce(
                this=exp.DPipe(this=exp.DPipe(this=_varchar(exp.Length(this=v.copy())), expression=_str(":")),
                               expression=v.copy()),
                expressions=[_str(NULL_MARK)],
            )
        )
    # One CONCAT, not a chain of ||: no intermediate string per part (a quarter of the
    # hash's cost at 1M rows). No part is NULL, so the NULL rules of CONCAT do not matter.
    return exp.Concat(expressions=parts, safe=True, coalesce=True)


def _signature(spec: SyncSpec) -> str:
    return "v2|" + ",".join(spec.sent_fields()) + "|"


def _fields_hash_number(spec: SyncSpec, table: str | None = None) -> exp.Expression:
    """The h2 hash as a number: DuckDB's hash() over the mapping's signature and each sent
    field cast to VARCHAR (as the v1 canonical string did: values compare by their text).
    hash() hashes each argument and combines them, NULL distinctly from '', so no length
    prefixes or concatenated string are needed: a third of the v1 cost at 1M rows
    (docs/performance.md). 64 bits: a changed record keeps its hash with odds 2**-64."""
    args = [_str(_signature(spec))] + [_varchar(_col(field_column(i), table)) for i in range(len(spec.sent_fields()))]
    return exp.Anonymous(this="hash", expressions=args)


def _h2_text(number: exp.Expression) -> exp.Expression:
    """The h2 hash as state stores it: HASH_PREFIX and the number in decimal."""
    return exp.DPipe(this=_str(HASH_PREFIX), expression=_varchar(number))


def h2_text_sql(column: str, table: str) -> str:
    """_h2_text of a HASH_NUMBER column, as DuckDB SQL (state.translate_legacy_hashes)."""
    return _h2_text(_col(column, table)).sql(DIALECT)


def _fields_hash(spec: SyncSpec, table: str | None = None) -> exp.Expression:
    """The h2 hash (text)."""
    return _h2_text(_fields_hash_number(spec, table))


def _legacy_fields_hash(spec: SyncSpec, table: str | None = None) -> exp.Expression:
    """The v1 hash: md5 of the canonical string (portable to every dialect)."""
    return exp.MD5(this=_canonical(spec, table))


def python_hash(spec: SyncSpec, values: list[object]) -> str:
    """The h2 hash of one row, for values whose VARCHAR cast is str() (strings, ints),
    computed by DuckDB's own hash() on VARCHAR values. Used by the reference diff in the tests."""
    import duckdb

    args = [_signature(spec), *(None if v is None else str(v) for v in values)]
    marks = ", ".join("?::VARCHAR" for _ in args)
    return duckdb.execute(f"SELECT ? || hash({marks})::VARCHAR", [HASH_PREFIX, *args]).fetchall()[0][0]


def legacy_python_hash(spec: SyncSpec, values: list[object]) -> str:
    """The v1 (md5) hash of one row in Python, as state written before h2 holds it."""
    import hashlib

    names = list(spec.sent_fields())
    s = "v1|" + ",".join(names) + "|"
    for v in values:
        s += NULL_MARK if v is None else f"{len(str(v))}:{v}"
    return hashlib.md5(s.encode()).hexdigest()


def holdout_threshold(share: float) -> str:
    """The held-out share as the hex prefix every held-out md5 sorts below."""
    return format(round(share * 16 ** HOLDOUT_HEX_DIGITS), f"0{HOLDOUT_HEX_DIGITS}x")


def in_holdout(spec: SyncSpec, key: str) -> bool:
    """The same test as the plan's, in Python: md5 of `salt|key`, its first 8 hex digits
    below the share's threshold. Lowercase hex of equal length sorts like the number, so
    the SQL is a plain string comparison that every dialect renders."""
    import hashlib

    if spec.holdout is None:
        return False
    digest = hashlib.md5(f"{spec.holdout_salt}|{key}".encode()).hexdigest()
    return digest[:HOLDOUT_HEX_DIGITS] < holdout_threshold(spec.holdout.share)


def _holdout_bucket_test(spec: SyncSpec) -> exp.Expression:
    assert spec.holdout is not None
    salted = exp.DPipe(this=_str(f"{spec.holdout_salt}|"), expression=_varchar(exp.column(spec.primary_key)))
    prefix = exp.Substring(this=exp.MD5(this=salted), start=exp.Literal.number(1),
                           length=exp.Literal.number(HOLDOUT_HEX_DIGITS))
    return exp.LT(this=prefix, expression=_str(holdout_threshold(spec.holdout.share)))


def _recorded_holdout(spec: SyncSpec, catalog: str | None) -> exp.Select:
    return (exp.select(_col("record_key"))
            .from_(exp.table_(HOLDOUT_TABLE, db=STATE_SCHEMA, catalog=catalog, quoted=True))
            .where(exp.EQ(this=_col("sync"), expression=_str(spec.name))))


def consent_condition(spec: SyncSpec, catalog: str | None = None,
                      key: exp.Expression | None = None) -> exp.Expression:
    """The profile key is contactable on the sync's channel (or, with a consent override,
    at least not deletion-requested) and not in outflow.deleted_profiles.
    key: the profile key as VARCHAR (default: the model's profile_key column)."""
    rule = exp.table_(RULE_TABLE, db=RULE_SCHEMA, catalog=catalog, quoted=True)
    allowed = (exp.Not(this=_col("is_deletion_requested")) if spec.consent_override
               else exp.EQ(this=_col("is_contactable"), expression=exp.true()))
    contactable = (exp.select(_varchar(_col("profile_id"))).from_(rule)
                   .where(exp.and_(exp.EQ(this=_col("channel"), expression=_str(spec.channel.value)), allowed)))
    deleted = (exp.select(_col("profile_id"))
               .from_(exp.table_(DELETED_TABLE, db=STATE_SCHEMA, catalog=catalog, quoted=True)))
    key = key or _varchar(exp.column(spec.profile_key, table="model_rows", quoted=True))
    return exp.and_(exp.In(this=key, query=exp.Subquery(this=contactable)),
                    exp.Not(this=exp.In(this=key.copy(), query=exp.Subquery(this=deleted))))


def _mapped(spec: SyncSpec, columns: list[str], catalog: str | None = None,
            planned: str | None = None, rule: bool = True) -> exp.Select:
    """Model rows the contact rule allows: the key, each sent field as f_i (the user's
    expression embedded).

    rule=False: every row (after `where`), with the profile key as PROFILE_KEY when it is
    not the primary key: the caller applies consent_condition itself (model_hashes_query).

    planned: a plan table; only the rows of its keys that it found in the model (hash
    set), which passed the contact rule when it was planned (the run holds the warehouse,
    so the rule tables cannot change in between): the rule's joins over every profile are
    not made again."""
    sel = exp.select(exp.alias_(_varchar(exp.column(spec.primary_key)), KEY, quoted=True))
    for i, sql in enumerate(spec.sent_fields().values()):
        sel = sel.select(exp.alias_(parse_fragment(sql, columns), field_column(i), quoted=True), copy=False)
    if spec.holdout is not None:
        sel = sel.select(exp.alias_(_holdout_bucket_test(spec), HELD_OUT, quoted=True), copy=False)
    if not rule and spec.profile_key != spec.primary_key:
        sel = sel.select(exp.alias_(_varchar(exp.column(spec.profile_key)), PROFILE_KEY, quoted=True), copy=False)
    sel = sel.from_(exp.table_(spec.model_table, db=spec.model_schema, catalog=catalog, quoted=True,
                               alias=exp.to_identifier("model_rows", quoted=True)), copy=False)
    if planned:
        in_model = (exp.select(_col(KEY)).from_(planned)
                    .where(exp.Not(this=exp.Is(this=_col(HASH), expression=exp.Null()))))
        allowed: exp.Expression = exp.In(this=_varchar(exp.column(spec.primary_key, table="model_rows", quoted=True)),
                                         query=exp.Subquery(this=in_model))
    else:
        allowed = consent_condition(spec, catalog) if rule else None
    cond: exp.Expression = exp.Not(this=exp.Is(this=exp.column(spec.primary_key), expression=exp.Null()))
    if allowed is not None:
        cond = exp.and_(cond, allowed)
    if spec.where:
        cond = exp.and_(exp.Paren(this=parse_fragment(spec.where, columns)), cond)
    return sel.where(cond, copy=False)


def model_columns_of(spec: SyncSpec) -> list[str]:
    """Every column name a spec's SQL refers to (so the plan can be built without the
    warehouse: validation against the real columns happened at load time)."""
    names = {spec.primary_key, spec.profile_key, *spec.match_on.values()}
    for sql in [*spec.fields.values(), *([spec.where] if spec.where else [])]:
        import sqlglot

        for c in sqlglot.parse_one(sql, read=DIALECT).find_all(exp.Column):
            names.add(c.name)
    return sorted(names)


def _status_is(value: str) -> exp.Expression:
    return exp.EQ(this=_col("status", "s"), expression=_str(value))


def _state_hash(legacy: bool) -> exp.Expression:
    """The state's fields_hash in the plan's format: with `legacy`, a v1 (md5) hash equal to
    the model row's v1 hash stands for the row's h2 hash (same data), any other as it is
    (it differs from every h2 hash: changed)."""
    if not legacy:
        return _col("fields_hash", "s")
    return (exp.Case().when(exp.EQ(this=_col("fields_hash", "s"), expression=_col(LEGACY_HASH, "m")), _col(HASH, "m"))
            .else_(_col("fields_hash", "s")))


def _action_case(spec: SyncSpec, full_resync: bool, legacy: bool = False) -> exp.Case:
    in_model = exp.Not(this=exp.Is(this=_col(KEY, "m"), expression=exp.Null()))
    not_in_model = exp.Is(this=_col(KEY, "m"), expression=exp.Null())
    hash_changed = exp.NullSafeNEQ(this=_state_hash(legacy), expression=_col(HASH, "m"))
    under_max = exp.LT(this=_col("attempts", "s"), expression=exp.Literal.number(spec.max_attempts))
    unseen = exp.or_(exp.Is(this=_col("record_key", "s"), expression=exp.Null()), _status_is("removed"))

    case = exp.Case()
    if spec.holdout is not None:
        held = exp.or_(_col(HELD_OUT, "m"), exp.Not(this=exp.Is(this=_col("record_key", "h"), expression=exp.Null())))
        # never in the tool through this sync: held out stays out (no add, no resync)
        never_sent = exp.Is(this=_col("record_key", "s"), expression=exp.Null())
        case = case.when(exp.and_(in_model.copy(), exp.Paren(this=held), exp.Paren(this=exp.or_(never_sent, _status_is("removed")))),
                         exp.Null())
    case = case.when(exp.and_(in_model, unseen), _str("add"))
    if full_resync:
        case = case.when(in_model, _str("resync"))
    else:
        if spec.mode is not Mode.INSERT:  # insert never sends a created record again
            case = case.when(exp.and_(in_model, _status_is("synced"), hash_changed), _str("change"))
        case = case.when(
            exp.and_(in_model, _status_is("failed"), exp.Paren(this=exp.or_(under_max, hash_changed.copy()))),
            _str("retry"),
        )
        case = case.when(exp.and_(in_model, _status_is("rejected"), hash_changed.copy()), _str("change"))
        # sent, answer never recorded (the run died): send again
        case = case.when(
            exp.and_(in_model, _status_is("pending"), exp.Paren(this=exp.or_(under_max.copy(), hash_changed.copy()))),
            _str("retry"),
        )
    if spec.mode.removes:
        # sent, answer never recorded, gone from the model: the tool may hold it, take it back
        case = case.when(exp.and_(not_in_model, _status_is("pending"), under_max.copy()), _str("remove"))
        removable = exp.or_(
            _status_is("synced"),
            exp.and_(_status_is("failed"), under_max.copy()),
            # a rejected *remove* leaves fields_hash NULL: do not ask again
            exp.and_(_status_is("rejected"), exp.Not(this=exp.Is(this=_col("fields_hash", "s"), expression=exp.Null()))),
        )
        case = case.when(
            exp.and_(not_in_model, exp.Not(this=exp.Is(this=_col("first_synced_at", "s"), expression=exp.Null())),
                     exp.Paren(this=removable)),
            _str("remove"),
        )
    return case


def model_hashes_query(spec: SyncSpec, *, columns: list[str] | None = None,
                       catalog: str | None = None, legacy: bool = False) -> exp.Select:
    """The model rows the sync reads, narrow: key and hash (HASH_NUMBER, and the holdout
    test). The engine materialises it once, counts it (model_hashes_summary) and plans from it
    (plan_query(hashes_table=...)), so the model is read and hashed once per plan.
    legacy: also the v1 hash (LEGACY_HASH), while the sync's state holds v1 hashes.

    The contact rule is applied to the hashed rows, not to the model's: the same rows
    come out (a row is kept or dropped whole, before anything reads it), but its semi
    join then carries the narrow columns instead of every field. DuckDB builds that
    join's hash table on the model side (it estimates a filtered model smaller than the
    rule), so with every field in it the rule cost as much as reading and hashing the
    model (docs/performance.md). MATERIALIZED keeps the optimizer from moving the
    hashing back above the join."""
    out = [_col(KEY), exp.alias_(_fields_hash_number(spec), HASH_NUMBER, quoted=True)]
    if legacy:
        out.append(exp.alias_(_legacy_fields_hash(spec), LEGACY_HASH, quoted=True))
    if spec.holdout is not None:
        out.append(_col(HELD_OUT))
    narrow = [exp.column(o.alias_or_name, quoted=True) for o in out]
    profile_key = KEY
    if spec.profile_key != spec.primary_key:
        profile_key = PROFILE_KEY
        out.append(_col(PROFILE_KEY))
    hashed = exp.select(*out).from_("mapped_rows")
    return (exp.select(*narrow).from_("hashed_rows")
            .where(consent_condition(spec, catalog, key=_col(profile_key)))
            .with_("mapped_rows", as_=_mapped(spec, columns or model_columns_of(spec), catalog, rule=False))
            .with_("hashed_rows", as_=hashed, materialized=True))


def model_hashes_summary(hashes_table: str) -> exp.Select:
    """model_summary_query's counts over a materialised model_hashes_query."""
    return exp.select(exp.alias_(exp.Count(this=exp.Star()), "model_rows"),
                      exp.alias_(exp.Count(this=exp.Distinct(expressions=[_col(KEY)])), "distinct_keys")
                      ).from_(hashes_table)


def maybe_duplicate_keys(hashes_table: str) -> exp.Select:
    """Rows minus distinct 64-bit hashes of the key: 0 proves the keys distinct (equal keys
    hash equally), and counting integers is cheaper than counting strings. Above 0 it may
    be a hash collision: model_hashes_summary then counts exactly."""
    key_hash = exp.Anonymous(this="hash", expressions=[_col(KEY)])
    return exp.select(exp.Sub(this=exp.Count(this=exp.Star()),
                              expression=exp.Count(this=exp.Distinct(expressions=[key_hash])))).from_(hashes_table)


# State columns the plan carries only when it carries the fields (the engine's narrow plan
# leaves them to send_query, which fetches them for the rows it sends).
STATE_EXTRAS = {"_destination_id": "destination_id", "_idempotency_key": "idempotency_key"}


def plan_query(spec: SyncSpec, *, full_resync: bool = False, columns: list[str] | None = None,
               catalog: str | None = None, hashes_table: str | None = None, legacy: bool = True,
               portable: bool = False) -> exp.Select:
    """The plan as a sqlglot tree (render with `.sql(dialect)` or `render_plan`).
    `catalog` qualifies the model and state tables (DuckDB: the file's catalog, as
    `outflow.sync_state` is ambiguous in a file named outflow.duckdb).

    hashes_table: a materialised model_hashes_query to plan from instead of the model.
    The plan is then narrow: no field columns and no STATE_EXTRAS (send_query adds them
    to the rows a run sends), which halves a plan's time at 1M rows: the join no longer
    carries every row's fields and ids.

    legacy: the state may hold v1 (md5) hashes: the model's v1 hash is computed too and a
    state hash equal to it counts as the same (a hashes_table must then carry LEGACY_HASH).
    The engine leaves it off once no v1 hash is left (apply._plan); without it a v1 hash
    compares as changed. portable: the hash is v1 itself, for dialects without DuckDB's
    hash() (render_plan for other warehouses)."""
    columns = columns or model_columns_of(spec)
    legacy = legacy and not portable
    n = len(spec.sent_fields())
    fcols = [] if hashes_table else [field_column(i) for i in range(n)]
    state_columns = {k: v for k, v in STATE_COLUMNS.items() if not (hashes_table and k in STATE_EXTRAS)}

    if hashes_table:
        hashed = exp.select(_col(KEY), exp.alias_(_h2_text(_col(HASH_NUMBER)), HASH, quoted=True))
        if legacy:
            hashed = hashed.select(_col(LEGACY_HASH), copy=False)
        if spec.holdout is not None:
            hashed = hashed.select(_col(HELD_OUT), copy=False)
        hashed = hashed.from_(hashes_table, copy=False)
    else:
        hashed = exp.select(_col(KEY), *[_col(c) for c in fcols],
                            exp.alias_(_legacy_fields_hash(spec) if portable else _fields_hash(spec), HASH,
                                       quoted=True)).from_("mapped_rows")
        if legacy:
            hashed = hashed.select(exp.alias_(_legacy_fields_hash(spec), LEGACY_HASH, quoted=True), copy=False)
        if spec.holdout is not None:
            hashed = hashed.select(_col(HELD_OUT), copy=False)
    state = (
        exp.select(*[_col(c) for c in ["record_key", *state_columns.values()]])
        .from_(exp.table_(STATE_TABLE, db=STATE_SCHEMA, catalog=catalog, quoted=True))
        .where(exp.EQ(this=_col("sync"), expression=_str(spec.name)))
    )
    send_op = spec.mode.send_operation.value
    remove_op = spec.mode.remove_operation
    action = _action_case(spec, full_resync, legacy)
    operation = exp.Case().when(exp.EQ(this=_col(ACTION), expression=_str("remove")),
                                _str(remove_op.value) if remove_op else exp.Null()).else_(_str(send_op))
    joined = exp.select(
        exp.alias_(action, ACTION, quoted=True),
        exp.alias_(exp.Coalesce(this=_col(KEY, "m"), expressions=[_col("record_key", "s")]), KEY, quoted=True),
        exp.alias_(_col(HASH, "m"), HASH, quoted=True),
        *[exp.alias_(_col(c, "m"), c, quoted=True) for c in fcols],
        *[exp.alias_(_state_hash(legacy) if src == "fields_hash" else _col(src, "s"), out, quoted=True)
          for out, src in state_columns.items()],
    ).from_(exp.table_("hashed_rows", alias=exp.to_identifier("m", quoted=True))).join(
        exp.table_("state_rows", alias=exp.to_identifier("s", quoted=True)),
        on=exp.EQ(this=_col(KEY, "m"), expression=_col("record_key", "s")),
        join_type="FULL OUTER",
    )
    if spec.holdout is not None:
        joined = joined.join(
            exp.table_("holdout_rows", alias=exp.to_identifier("h", quoted=True)),
            on=exp.EQ(this=_col(KEY, "m"), expression=_col("record_key", "h")),
            join_type="LEFT",
        )
    final = (
        exp.select(exp.alias_(operation, OPERATION, quoted=True), exp.Star())
        .from_("joined_rows")
        .where(exp.Not(this=exp.Is(this=_col(ACTION), expression=exp.Null())))
    )
    if not hashes_table:
        final = final.with_("mapped_rows", as_=_mapped(spec, columns, catalog))
    final = (
        final.with_("hashed_rows", as_=hashed)
        .with_("state_rows", as_=state)
    )
    if spec.holdout is not None:
        final = final.with_("holdout_rows", as_=_recorded_holdout(spec, catalog))
    return final.with_("joined_rows", as_=joined)


def holdout_assignments_query(spec: SyncSpec, *, columns: list[str] | None = None,
                              catalog: str | None = None) -> exp.Select:
    """Keys of the model (after `where`) that fall in the holdout and that neither the
    state (this sync never sent them) nor outflow.sync_holdout knows yet: the run records
    them with its time as assigned_at."""
    assert spec.holdout is not None
    columns = columns or model_columns_of(spec)
    state = (exp.select(_col("record_key"))
             .from_(exp.table_(STATE_TABLE, db=STATE_SCHEMA, catalog=catalog, quoted=True))
             .where(exp.EQ(this=_col("sync"), expression=_str(spec.name))))
    return (
        exp.select(exp.alias_(_col(KEY, "m"), KEY, quoted=True)).distinct()
        .from_(exp.table_("mapped_rows", alias=exp.to_identifier("m", quoted=True)))
        .join(exp.table_("state_rows", alias=exp.to_identifier("s", quoted=True)),
              on=exp.EQ(this=_col(KEY, "m"), expression=_col("record_key", "s")), join_type="LEFT")
        .join(exp.table_("holdout_rows", alias=exp.to_identifier("h", quoted=True)),
              on=exp.EQ(this=_col(KEY, "m"), expression=_col("record_key", "h")), join_type="LEFT")
        .where(exp.and_(_col(HELD_OUT, "m"),
                        exp.Is(this=_col("record_key", "s"), expression=exp.Null()),
                        exp.Is(this=_col("record_key", "h"), expression=exp.Null())))
        .with_("mapped_rows", as_=_mapped(spec, columns, catalog))
        .with_("state_rows", as_=state)
        .with_("holdout_rows", as_=_recorded_holdout(spec, catalog))
    )


def model_summary_query(spec: SyncSpec, *, columns: list[str] | None = None,
                        catalog: str | None = None) -> exp.Select:
    """Rows the sync reads, and distinct keys among them (duplicates make a plan ambiguous)."""
    columns = columns or model_columns_of(spec)
    return (
        exp.select(exp.alias_(exp.Count(this=exp.Star()), "model_rows"),
                   exp.alias_(exp.Count(this=exp.Distinct(expressions=[_col(KEY)])), "distinct_keys"))
        .from_("mapped_rows")
        .with_("mapped_rows", as_=_mapped(spec, columns, catalog))
    )


IDEMPOTENCY, KEY_HASH = "_idem", "_key_hash"
IDEMPOTENCY_HEX_DIGITS = 32
UNIT_SEPARATOR = "\x1f"


def _sha256_hex(e: exp.Expression) -> exp.Expression:
    return exp.SHA2(this=e, length=exp.Literal.number(256))


def _joined(parts: list[exp.Expression]) -> exp.Expression:
    """`"\x1f".join(parts)` with NULL as "" (concat_ws would skip a NULL)."""
    out: exp.Expression = parts[0]
    for p in parts[1:]:
        out = exp.DPipe(this=exp.DPipe(this=out, expression=_str(UNIT_SEPARATOR)),
                        expression=exp.Coalesce(this=p, expressions=[_str("")]))
    return out


def idempotency_key_sql(sync: str, operation: exp.Expression, *parts: exp.Expression) -> exp.Expression:
    """apply.idempotency_key in SQL: the first 32 hex digits of sha256 over
    sync, key, operation and parts joined by \x1f (NULL parts as "")."""
    return exp.Left(this=_sha256_hex(_joined([_str(sync), _col(KEY), operation, *parts])),
                    expression=exp.Literal.number(IDEMPOTENCY_HEX_DIGITS))


def send_keys_query(spec: SyncSpec, relation: str, run_id: str) -> exp.Select:
    """The rows of `relation` (plan rows with their state) with each record's idempotency
    key and the changelog's key hash computed in the warehouse (vectorised; byte for byte
    what apply.idempotency_key and state.key_hash give in Python).

    insert: the key state already holds (stable across runs and crashes, so a re-sent
    insert whose answer was lost is dropped by the tool), else one of (sync, key); after a
    rejection (nothing was created) a new key per version. Other operations: one key per
    (sync, key, operation, hash, run)."""
    def nonempty(e: exp.Expression) -> exp.Expression:
        return exp.Nullif(this=e, expression=_str(""))

    insert = exp.Case().when(
        exp.EQ(this=_col("_state_status"), expression=_str("rejected")),
        idempotency_key_sql(spec.name, _str("insert"), _str("after-rejection"), _col(HASH)),
    ).else_(exp.Coalesce(this=nonempty(_col("_idempotency_key")),
                         expressions=[idempotency_key_sql(spec.name, _str("insert"))]))
    other = idempotency_key_sql(
        spec.name, _col(OPERATION),
        exp.Coalesce(this=nonempty(_col(HASH)), expressions=[_col("_state_hash")]), _str(run_id))
    idem = exp.Case().when(exp.EQ(this=_col(OPERATION), expression=_str("insert")), insert).else_(other)
    return exp.select(exp.Star(), exp.alias_(idem, IDEMPOTENCY, quoted=True),
                      exp.alias_(_sha256_hex(_col(KEY)), KEY_HASH, quoted=True)).from_(relation)


def send_query(spec: SyncSpec, plan_table: str, run_id: str, *, columns: list[str] | None = None,
               catalog: str | None = None) -> exp.Select:
    """What a run sends: the rows of a narrow plan table (plan_query(hashes_table=...)) with
    their mapped fields (f_i, NULL for rows gone from the model), their STATE_EXTRAS and
    send_keys_query's keys. Read in the run's snapshot: the state as planned."""
    n = len(spec.sent_fields())
    state = (exp.select(_col("record_key"), *[_col(c) for c in STATE_EXTRAS.values()])
             .from_(exp.table_(STATE_TABLE, db=STATE_SCHEMA, catalog=catalog, quoted=True))
             .where(exp.EQ(this=_col("sync"), expression=_str(spec.name))))
    rows = (
        exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("p", quoted=True)),
                   *[exp.alias_(_col(field_column(i), "m"), field_column(i), quoted=True) for i in range(n)],
                   *[exp.alias_(_col(src, "s"), out, quoted=True) for out, src in STATE_EXTRAS.items()])
        .from_(exp.table_(plan_table, alias=exp.to_identifier("p", quoted=True)))
        .join(exp.table_("mapped_rows", alias=exp.to_identifier("m", quoted=True)),
              on=exp.EQ(this=_col(KEY, "p"), expression=_col(KEY, "m")), join_type="LEFT")
        .join(exp.table_("state_rows", alias=exp.to_identifier("s", quoted=True)),
              on=exp.EQ(this=_col(KEY, "p"), expression=_col("record_key", "s")), join_type="LEFT")
    )
    return (send_keys_query(spec, "send_rows", run_id)
            .with_("mapped_rows", as_=_mapped(spec, columns or model_columns_of(spec), catalog, planned=plan_table))
            .with_("state_rows", as_=state)
            .with_("send_rows", as_=rows))


def render_plan(spec: SyncSpec, dialect: str = DIALECT, *, full_resync: bool = False,
                columns: list[str] | None = None, catalog: str | None = None) -> str:
    """The whole plan as SQL. DuckDB: the h2 hash, reading v1 hashes too; other dialects:
    the portable v1 hash."""
    return plan_query(spec, full_resync=full_resync, columns=columns, catalog=catalog,
                      portable=dialect != DIALECT).sql(dialect=dialect, pretty=True)
