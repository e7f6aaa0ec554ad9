"""What a sync is, read from the dbt manifest's exposures, and validated before anything runs.

A sync is declared in dbt yml as an exposure whose `config.meta` has an `outflow` block.
Every SQL fragment (each `fields` value, `where`, implicitly `primary_key`/`match_on`)
must be ONE scalar expression over the model's columns: it is parsed with sqlglot
(DuckDB dialect) and walked against an allowlist of node types, so a statement
separator, subquery, DDL/DML, aggregate, window, unknown column or unknown function
is refused with a message that names the sync, the key and what to fix.
"""

from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import TokenType

from destinations.base import Operation

DIALECT = "duckdb"


class Mode(str, enum.Enum):
    UPSERT = "upsert"
    UPDATE = "update"
    INSERT = "insert"
    MIRROR = "mirror"
    MEMBERSHIP = "membership"

    @property
    def removes(self) -> bool:
        """Only mirror and membership syncs ever take anything away in the tool."""
        return self in (Mode.MIRROR, Mode.MEMBERSHIP)

    @property
    def send_operation(self) -> Operation:
        return {
            Mode.UPSERT: Operation.UPSERT,
            Mode.UPDATE: Operation.UPDATE,
            Mode.INSERT: Operation.INSERT,
            Mode.MIRROR: Operation.UPSERT,
            Mode.MEMBERSHIP: Operation.ADD_MEMBER,
        }[self]

    @property
    def remove_operation(self) -> Operation | None:
        return {Mode.MIRROR: Operation.DELETE, Mode.MEMBERSHIP: Operation.REMOVE_MEMBER}.get(self)


class Channel(str, enum.Enum):
    """What a sync contacts the person through; the warehouse's contact rule
    (contactable_profiles) decides per profile and channel, see docs/privacy.md."""
    EMAIL = "email"
    SMS = "sms"
    ADS = "ads"
    CRM = "crm"


class ConsentOverride(BaseModel):
    """Lifts the channel's consent rule for one sync (never a deletion request). The
    reason is recorded on every run of the sync."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _says_why(cls, v: str) -> str:
        if len(v.strip()) < 10:
            raise ValueError("must say why consent does not apply (at least 10 characters)")
        return v.strip()


class Guardrails(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Refuse a run whose removals exceed this share of the records this sync has in the tool.
    max_remove_share: float = Field(0.2, ge=0.0, le=1.0)
    # An empty model is refused unless this says emptiness is legitimate.
    allow_empty_model: bool = False


class Holdout(BaseModel):
    """A random, stable share of the audience kept out of the destination, to measure
    lift against (docs/sync_engine.md "Holdout"). Membership in the holdout depends only
    on md5(salt | primary key), so it is the same on every run and machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    share: float = Field(gt=0.0, le=0.5)  # above half, the "holdout" is the campaign
    salt: str | None = Field(None, min_length=1)  # default: the sync's name


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cron: str | None = None
    on_upstream_change: bool = True

    @field_validator("cron")
    @classmethod
    def _cron_has_five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError(f"cron {v!r} must have five fields (minute hour day month weekday)")
        return v


class SyncSpec(BaseModel):
    """One validated sync. `model_schema`/`model_table` name the relation the plan reads
    (no database part: the DuckDB catalog name follows the file name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str
    model_schema: str = "main"
    model_table: str
    destination: str
    object: str
    mode: Mode
    primary_key: str
    # Consent: the channel's rule is joined on `profile_key` (a model column holding the
    # profile_id) when the model is read; an override needs a reason and is logged.
    channel: Channel
    profile_key: str = "profile_id"
    consent_override: ConsentOverride | None = None
    match_on: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    where: str | None = None
    trigger: Trigger = Field(default_factory=Trigger)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    holdout: Holdout | None = None
    max_attempts: int = Field(5, ge=1)
    batch_size: int | None = Field(None, ge=1)
    owner: str | None = None

    @field_validator("primary_key")
    @classmethod
    def _key_is_a_column_name(cls, v: str) -> str:
        return column_name(v)

    @field_validator("match_on")
    @classmethod
    def _match_keys_are_column_names(cls, v: dict[str, str]) -> dict[str, str]:
        return {dest: column_name(col) for dest, col in v.items()}

    @field_validator("fields")
    @classmethod
    def _fields_are_expressions(cls, v: dict[str, str]) -> dict[str, str]:
        # Safe by construction: every spec's SQL is checked here, whoever builds it; the
        # columns are checked against the model when syncs load (load_sync).
        for dest, sql in v.items():
            try:
                parse_fragment(sql, None)
            except FragmentError as e:
                raise ValueError(f"{dest}: {e}") from None
        return v

    @field_validator("where")
    @classmethod
    def _where_is_an_expression(cls, v: str | None) -> str | None:
        if v is not None:
            parse_fragment(v, None)
        return v

    @model_validator(mode="after")
    def _something_to_send(self) -> SyncSpec:
        if not self.fields and not self.match_on and self.mode is not Mode.MEMBERSHIP:
            raise ValueError("`fields` is empty: map at least one destination field to a model expression")
        if self.channel is not Channel.CRM and not self.mode.removes and self.consent_override is None:
            raise ValueError(
                f"mode: a {self.channel.value} sync must take a person away when their consent is revoked, and "
                f"{self.mode.value} never removes: use membership or mirror")
        clash = set(self.fields) & set(self.match_on)
        if clash:
            raise ValueError(f"destination field(s) {sorted(clash)} appear in both `fields` and `match_on`: keep one")
        return self

    @property
    def holdout_salt(self) -> str | None:
        return None if self.holdout is None else (self.holdout.salt or self.name)

    def sent_fields(self) -> dict[str, str]:
        """Destination field -> SQL expression, in a stable order: match keys then fields.
        The hash covers exactly these (and nothing else of the model)."""
        return {**self.match_on, **self.fields}


@dataclass(frozen=True)
class SyncSpecError:
    sync: str
    key: str  # e.g. "fields.lead_score", "where", "mode"
    message: str

    def __str__(self) -> str:
        return f"sync {self.sync!r}, {self.key}: {self.message}"


# ---------------------------------------------------------------- SQL fragments

# Node types a scalar expression may contain. Anything else is refused; unknown
# functions parse as exp.Anonymous and are refused with the allowlist in the message.
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Var,
    exp.DataType, exp.DataTypeParam, exp.Interval,
    # operators
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
    exp.Case, exp.If, exp.Cast, exp.TryCast,
    # string
    exp.Lower, exp.Upper, exp.Trim, exp.Concat, exp.ConcatWs, exp.Length, exp.Substring,
    exp.Replace, exp.Left, exp.Right, exp.SplitPart, exp.StartsWith, exp.Contains, exp.RegexpLike,
    exp.RegexpReplace, exp.RegexpExtract,
    # null handling, numbers
    exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Round, exp.Abs, exp.Floor, exp.Ceil,
    # dates
    exp.CurrentDate, exp.CurrentTimestamp, exp.DateTrunc, exp.TimestampTrunc, exp.DateAdd,
    exp.DateSub, exp.DateDiff, exp.Extract, exp.Year, exp.Month, exp.Day, exp.TimeToStr, exp.ToChar,
    exp.StrToDate, exp.StrToTime, exp.Date, exp.TsOrDsToDate,
)
ALLOWED_FUNCTIONS = (
    "lower, upper, trim, concat, concat_ws, length, substring, replace, left, right, split_part, "
    "starts_with, contains, regexp_matches, regexp_replace, regexp_extract, coalesce, nullif, "
    "greatest, least, round, abs, floor, ceil, cast, try_cast, case/when, if, current_date, "
    "current_timestamp, date_trunc, date_add, date_sub, date_diff, extract, year, month, day, "
    "strftime, strptime"
)


# Longest SQL fragment accepted: far above any real field or filter, far below what
# could slow the parser down.
MAX_FRAGMENT_CHARS = 2_000
# Deepest expression tree accepted (nested parentheses, operators, calls).
MAX_FRAGMENT_DEPTH = 40
# Types a CAST may name. Anything else (a user-defined or quoted type name) is refused:
# sqlglot writes such a name back unquoted, so it could carry SQL.
_CAST_TYPES = frozenset({
    exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR, exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT128, exp.DataType.Type.UTINYINT, exp.DataType.Type.USMALLINT, exp.DataType.Type.UINT,
    exp.DataType.Type.UBIGINT, exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL,
    exp.DataType.Type.DATE, exp.DataType.Type.TIME, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.INTERVAL,
})
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class FragmentError(ValueError):
    """A sync's SQL fragment was refused; the message says what to fix."""


def column_name(name: object) -> str:
    """A plain model column name (primary_key, match_on): letters, digits and _ only."""
    if not isinstance(name, str) or not _COLUMN_NAME.match(name):
        shown = repr(name) if len(str(name)) <= 60 else repr(str(name)[:60]) + "..."
        raise ValueError(f"{shown} must be a plain column name (letters, digits and _; at most 128)")
    return name


def _check_characters(sql: str) -> None:
    if len(sql) > MAX_FRAGMENT_CHARS:
        raise FragmentError(
            f"is {len(sql):,} characters long, above the limit of {MAX_FRAGMENT_CHARS:,}: "
            "compute long expressions in the dbt model and map the column")
    for i, ch in enumerate(sql):
        if ch in "\t\n\r":
            continue
        category = unicodedata.category(ch)
        # Cc: control characters (NUL...); Cf: invisible format characters (bidi overrides,
        # zero-width spaces) that make a fragment read differently from what runs; Cs/Co:
        # surrogates and private use.
        if category in ("Cc", "Cf", "Cs", "Co"):
            raise FragmentError(
                f"contains the invisible or control character U+{ord(ch):04X} at position {i}: remove it")


def _depth(tree: exp.Expression) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def parse_fragment(sql: str, columns: list[str] | None) -> exp.Expression:
    """Parse one user SQL fragment and check it is a scalar expression over `columns`
    (None: any unqualified column name; the model's columns are checked at load).

    Returns the parsed expression (column names as written); raises FragmentError
    with a message that says what to fix. Nothing else escapes.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise FragmentError("is empty: write a SQL expression over the model's columns")
    _check_characters(sql)
    try:
        tokens = sqlglot.tokenize(sql, read=DIALECT)
        if any(t.comments for t in tokens):
            raise FragmentError("must not contain comments (-- or /* */): they can hide SQL")
        if any(t.token_type is TokenType.SEMICOLON for t in tokens):
            raise FragmentError("must not contain ';': a fragment is one expression, not statements")
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except FragmentError:
        raise
    except ParseError as e:
        first = e.errors[0]["description"] if e.errors else str(e)
        raise FragmentError(f"is not valid SQL ({first}): {_shown(sql)}") from None
    except SqlglotError as e:  # e.g. an unterminated string
        raise FragmentError(f"is not valid SQL ({str(e).splitlines()[0][:120]}): {_shown(sql)}") from None
    except RecursionError:
        raise FragmentError(f"is nested too deeply (over {MAX_FRAGMENT_DEPTH} levels)") from None
    except Exception as e:  # sqlglot trips on some odd input (e.g. a bare '->'): still a refusal
        raise FragmentError(f"is not valid SQL ({type(e).__name__}): {_shown(sql)}") from None
    if len(statements) != 1:
        raise FragmentError(f"must be one expression, not {len(statements)} statements (remove the ';')")
    tree = statements[0]
    if not _round_trips(tree):  # the parser accepted something it cannot write back (e.g. a bare '@')
        raise FragmentError(f"is not valid SQL: {_shown(sql)}")
    if _depth(tree) > MAX_FRAGMENT_DEPTH:
        raise FragmentError(f"is nested too deeply (over {MAX_FRAGMENT_DEPTH} levels): simplify it or "
                            "compute it in the dbt model")
    known = {c.lower(): c for c in columns} if columns is not None else None
    for node in tree.walk():
        if isinstance(node, (exp.Subquery, exp.Query)):
            raise FragmentError("must not contain a subquery or SELECT: use the model's columns directly")
        if isinstance(node, (exp.DDL, exp.DML, exp.Command, exp.Drop, exp.Create, exp.Insert,
                             exp.Update, exp.Delete, exp.Merge, exp.Alter, exp.TruncateTable)):
            raise FragmentError(f"must not be a statement ({type(node).__name__.upper()}): write an expression")
        if isinstance(node, exp.Window):
            raise FragmentError("must not use a window function (OVER ...): a field is computed per row")
        if isinstance(node, exp.AggFunc):
            raise FragmentError(
                f"must not use the aggregate {node.sql(DIALECT)!r}: a field is computed per row; "
                "aggregate in a dbt model instead")
        if isinstance(node, exp.Star):
            raise FragmentError("must not use '*': name the column")
        if isinstance(node, exp.Alias):
            raise FragmentError("must not alias (AS ...): the destination field name is the key")
        if isinstance(node, exp.Anonymous):
            raise FragmentError(f"uses unknown function {node.name[:40]}(): allowed are {ALLOWED_FUNCTIONS}")
        if isinstance(node, exp.Column):
            if node.table:
                raise FragmentError(f"column {_shown(node.sql(DIALECT), 60)} must not be qualified: write "
                                    f"{_shown(node.name, 60)}")
            if known is not None and node.name.lower() not in known:
                hint = difflib.get_close_matches(node.name.lower(), list(known), n=1)
                fix = f" (did you mean {known[hint[0]]}?)" if hint else ""
                raise FragmentError(
                    f"unknown column {_shown(node.name, 60)}{fix}; a string literal needs single quotes"
                )
            continue
        if isinstance(node, exp.In) and node.args.get("query"):
            raise FragmentError("must not contain a subquery (IN (SELECT ...)): list values instead")
        if isinstance(node, exp.DataType) and (node.this not in _CAST_TYPES or node.args.get("nested")):
            raise FragmentError(f"casts to {_shown(node.sql(DIALECT), 40)}, which is not allowed: cast to "
                                "VARCHAR, an integer, DOUBLE, DECIMAL, BOOLEAN, DATE, TIME or TIMESTAMP")
        if not isinstance(node, _ALLOWED_NODES):
            if isinstance(node, exp.Func):
                raise FragmentError(
                    f"uses function {node.sql_name().lower()}(), which is not allowed: allowed are {ALLOWED_FUNCTIONS}")
            raise FragmentError(f"uses {type(node).__name__} ({_shown(node.sql(DIALECT), 60)}), "
                                "which is not a scalar expression")
    return tree


def _round_trips(tree: exp.Expression) -> bool:
    """The plan embeds the tree as sqlglot writes it: that text must mean the same tree."""
    try:
        again = sqlglot.parse(tree.sql(DIALECT), read=DIALECT)
    except Exception:
        return False
    return len(again) == 1 and again[0] == tree


def _shown(text: str, limit: int = 120) -> str:
    """A fragment quoted in a message, cut so a huge input does not make a huge message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


# ---------------------------------------------------------------- manifest

def _outflow_block(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # dbt 1.11 writes exposure meta under config.meta and mirrors it in meta.
    for meta in ((node.get("config") or {}).get("meta") or {}, node.get("meta") or {}):
        if isinstance(meta, Mapping) and "outflow" in meta:
            return meta["outflow"]
    return None


def _pydantic_errors(name: str, e: ValidationError) -> list[SyncSpecError]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "outflow"
        msg = err["msg"].removeprefix("Value error, ")
        if loc == "fields" and err["type"] == "value_error":  # "<field>: <problem>" from the validator
            dest, _, msg = msg.partition(": ")
            loc = f"fields.{dest}"
        key, sep, rest = msg.partition(": ")
        if loc == "outflow" and sep and key in SyncSpec.model_fields:  # a cross-key check naming its key
            loc, msg = key, rest
        if err["type"] == "missing":
            msg = "is required" if loc != "channel" else (
                "is required: say what the sync contacts people through (email, sms, ads or crm); "
                "its consent rule decides who is sent")
        elif err["type"] == "extra_forbidden":
            msg = "is not a known key (check the spelling)"
        elif err["type"] == "enum":
            choices = {"mode": Mode, "channel": Channel}.get(loc)
            msg = (f"{err.get('input')!r} is not one of {', '.join(m.value for m in choices)}" if choices
                   else err["msg"])
        out.append(SyncSpecError(name, loc, msg))
    return out


def load_sync(
    exposure: Mapping[str, Any], manifest: Mapping[str, Any], model_columns: Callable[[str], list[str] | None]
) -> SyncSpec | list[SyncSpecError]:
    name = str(exposure.get("name", "?"))
    block = _outflow_block(exposure)
    if not isinstance(block, Mapping):
        return [SyncSpecError(name, "outflow", "must be a mapping of sync settings")]
    nodes = [n for n in (exposure.get("depends_on") or {}).get("nodes", []) if n.startswith(("model.", "seed.", "snapshot."))]
    if len(nodes) != 1:
        return [SyncSpecError(name, "depends_on",
                              f"must ref exactly one model (found {len(nodes)}): a sync reads one model")]
    node = (manifest.get("nodes") or {}).get(nodes[0]) or {}
    model = node.get("name") or nodes[0].split(".")[-1]
    raw = {
        **dict(block),
        "name": name,
        "model": model,
        "model_schema": node.get("schema") or "main",
        "model_table": node.get("alias") or model,
        "owner": (exposure.get("owner") or {}).get("name"),
    }
    # Exposure-level names win over anything the block claims.
    try:
        spec = SyncSpec.model_validate(raw)
    except ValidationError as e:
        return _pydantic_errors(name, e)

    columns = model_columns(model)
    if not columns:
        return [SyncSpecError(name, "depends_on",
                              f"model {model!r} has no known columns: build it (dbt build -s {model}) first")]
    errors: list[SyncSpecError] = []
    lowered = {c.lower() for c in columns}
    if spec.primary_key.lower() not in lowered:
        errors.append(SyncSpecError(name, "primary_key",
                                    f"{spec.primary_key!r} is not a column of {model}: pick one of {sorted(columns)}"))
    if spec.profile_key.lower() not in lowered:
        errors.append(SyncSpecError(name, "profile_key", (
            f"model {model} has no column {spec.profile_key!r}: consent and deletion requests are decided per "
            "profile, so a sync must read a model with a profile_id column, or name the column holding the "
            f"profile id with `profile_key: <column>` (columns: {sorted(columns)})")))
    for dest, col in spec.match_on.items():
        if col.lower() not in lowered:
            errors.append(SyncSpecError(name, f"match_on.{dest}",
                                        f"{col!r} is not a column of {model}: match keys are plain model columns"))
    for dest, sql in spec.fields.items():
        try:
            parse_fragment(sql, columns)
        except FragmentError as e:
            errors.append(SyncSpecError(name, f"fields.{dest}", str(e)))
    if spec.where is not None:
        try:
            parse_fragment(spec.where, columns)
        except FragmentError as e:
            errors.append(SyncSpecError(name, "where", str(e)))
    return errors or spec


def load_syncs(
    manifest: Mapping[str, Any], model_columns: Callable[[str], list[str] | None]
) -> tuple[list[SyncSpec], list[SyncSpecError]]:
    """Every exposure with an `outflow` block, validated. A broken sync yields errors and
    is left out; the others load."""
    specs: list[SyncSpec] = []
    errors: list[SyncSpecError] = []
    seen: set[str] = set()
    for _, exposure in sorted((manifest.get("exposures") or {}).items()):
        if _outflow_block(exposure) is None:
            continue
        result = load_sync(exposure, manifest, model_columns)
        if isinstance(result, SyncSpec):
            if result.name in seen:
                errors.append(SyncSpecError(result.name, "name", "is declared twice: sync names must be unique"))
                continue
            seen.add(result.name)
            specs.append(result)
        else:
            errors.extend(result)
    return specs, errors
