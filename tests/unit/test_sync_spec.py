"""Sync specs from the dbt manifest: valid ones load, each bad input is named."""

from __future__ import annotations

import copy

import pytest

from orchestration.sync.spec import FragmentError, Mode, SyncSpec, load_syncs, parse_fragment

COLUMNS = {"profiles": ["profile_id", "email", "first_name", "score", "consent_email", "updated_at"]}


def exposure(name: str, model: str = "profiles", **outflow) -> dict:
    block = {"destination": "hub", "object": "contacts", "mode": "upsert", "primary_key": "profile_id",
             "match_on": {"email": "email"}, "fields": {"firstname": "first_name"}, "channel": "crm", **outflow}
    return {
        "name": name, "type": "application", "owner": {"name": "Growth"},
        "depends_on": {"nodes": [f"model.outflow.{model}"]},
        "config": {"meta": {"outflow": block}}, "meta": {"outflow": block},
    }


def manifest(*exposures: dict) -> dict:
    return {
        "nodes": {f"model.outflow.{m}": {"name": m, "alias": m, "schema": "main"} for m in COLUMNS},
        "exposures": {f"exposure.outflow.{e['name']}": e for e in exposures},
    }


def load(*exposures: dict):
    return load_syncs(manifest(*exposures), COLUMNS.get)


def errors_for(**outflow) -> list[tuple[str, str]]:
    specs, errors = load(exposure("s1", **outflow))
    assert not specs
    return [(e.key, e.message) for e in errors]


def test_valid_sync_loads_with_defaults():
    specs, errors = load(exposure("hubspot_contacts", where="consent_email = 'granted'",
                                  fields={"firstname": "trim(first_name)", "lead_score": "round(score, 1)"},
                                  trigger={"cron": "0 * * * *"}))
    assert errors == []
    (spec,) = specs
    assert spec.name == "hubspot_contacts" and spec.model == "profiles" and spec.model_table == "profiles"
    assert spec.mode is Mode.UPSERT and spec.owner == "Growth"
    assert spec.guardrails.max_remove_share == 0.2 and spec.max_attempts == 5
    assert list(spec.sent_fields()) == ["email", "firstname", "lead_score"]


def test_meta_only_under_top_level_meta_is_read():
    e = exposure("s_meta")
    e["config"] = {"meta": {}}
    specs, errors = load(e)
    assert [s.name for s in specs] == ["s_meta"] and not errors


def test_exposures_without_outflow_block_are_ignored():
    e = exposure("dash")
    e["config"] = {"meta": {}}
    e["meta"] = {}
    assert load(e) == ([], [])


def test_broken_sync_does_not_break_the_others():
    specs, errors = load(exposure("good"), exposure("bad", fields={"x": "sum(score)"}))
    assert [s.name for s in specs] == ["good"]
    assert [(e.sync, e.key) for e in errors] == [("bad", "fields.x")]
    assert "sync 'bad', fields.x:" in str(errors[0])


@pytest.mark.parametrize(
    "fragment, expected",
    [
        ("first_name; drop table profiles", "must not contain ';'"),
        ("(select max(score) from profiles)", "subquery"),
        ("score in (select score from profiles)", "subquery"),
        ("drop table profiles", "statement"),
        ("delete from profiles", "statement"),
        ("first_nam", "unknown column 'first_nam' (did you mean first_name?)"),
        ("granted", "a string literal needs single quotes"),
        ("p.first_name", "must not be qualified"),
        ("my_udf(first_name)", "unknown function my_udf()"),
        ("sum(score)", "aggregate"),
        ("count(*)", "aggregate"),
        ("row_number() over (order by score)", "window function"),
        ("first_name as fn", "must not alias"),
        ("*", "'*'"),
        ("lower(", "not valid SQL"),
        ("   ", "is empty"),
    ],
)
def test_bad_field_fragment_is_refused_with_the_reason(fragment, expected):
    [(key, message)] = errors_for(fields={"lead_score": fragment})
    assert key == "fields.lead_score"
    assert expected in message


def test_bad_where_is_named():
    [(key, message)] = errors_for(where="consent_emial = 'granted'")
    assert key == "where" and "consent_emial" in message and "consent_email" in message


@pytest.mark.parametrize(
    "fragment",
    [
        "lower(trim(email))", "coalesce(first_name, 'friend')", "concat(first_name, ' ', email)",
        "cast(score as integer)", "round(score * 1.5, 2)", "nullif(first_name, '')",
        "case when score > 50 then 'hot' when score > 20 then 'warm' else 'cold' end",
        "score between 1 and 10 and not (email is null)", "first_name || '!'", "date_trunc('day', updated_at)",
        "updated_at + interval 1 day", "extract(year from updated_at)", "strftime(updated_at, '%Y-%m')",
        "email like '%@example.com'", "score in (1, 2, 3)", "greatest(score, 0)", "current_date",
        "split_part(email, '@', 2)", "EMAIL",
    ],
)
def test_scalar_expressions_are_accepted(fragment):
    parse_fragment(fragment, COLUMNS["profiles"])


def test_fragment_error_is_a_value_error():
    with pytest.raises(FragmentError):
        parse_fragment("max(score)", COLUMNS["profiles"])


@pytest.mark.parametrize(
    "outflow, key, expected",
    [
        ({"mode": "sync_all"}, "mode", "not one of upsert, update, insert, mirror, membership"),
        ({"primary_key": "id"}, "primary_key", "'id' is not a column of profiles"),
        ({"match_on": {"email": "mail"}}, "match_on.email", "'mail' is not a column"),
        ({"destination": None}, "destination", ""),
        ({"guardrails": {"max_remove_share": 1.5}}, "guardrails.max_remove_share", "less than or equal to 1"),
        ({"guardrails": {"max_remvoe_share": 0.1}}, "guardrails.max_remvoe_share", "not a known key"),
        ({"max_attempts": 0}, "max_attempts", "greater than or equal to 1"),
        ({"trigger": {"cron": "hourly"}}, "trigger.cron", "five fields"),
        ({"fields": {}, "match_on": {}}, "outflow", "`fields` is empty"),
        ({"colour": "blue"}, "colour", "not a known key"),
    ],
)
def test_bad_settings_are_named(outflow, key, expected):
    errs = errors_for(**outflow)
    assert any(k == key and expected in m for k, m in errs), errs


def test_missing_required_key():
    e = exposure("s1")
    block = copy.deepcopy(e["config"]["meta"]["outflow"])
    del block["object"]
    e["config"]["meta"]["outflow"] = e["meta"]["outflow"] = block
    specs, errors = load(e)
    assert not specs and [(x.key, x.message) for x in errors] == [("object", "is required")]


def test_unbuilt_model_and_multiple_refs_are_named():
    specs, errors = load(exposure("s1", model="not_built"))
    assert errors[0].key == "depends_on" and "dbt build -s not_built" in errors[0].message
    e = exposure("s2")
    e["depends_on"]["nodes"].append("model.outflow.other")
    _, errors = load(e)
    assert errors[0].key == "depends_on" and "exactly one model" in errors[0].message


def test_modes_that_remove():
    assert [m.value for m in Mode if m.removes] == ["mirror", "membership"]


def test_spec_is_immutable():
    spec = SyncSpec(name="s", model="m", model_table="m", destination="d", object="o", mode="upsert",
                    primary_key="id", fields={"a": "a"}, channel="crm")
    with pytest.raises(Exception):
        spec.name = "t"


# ----------------------------------------------------------------- consent


def test_channel_is_required_and_named():
    e = exposure("s1")
    del e["config"]["meta"]["outflow"]["channel"]  # one dict, mirrored under meta
    _, errors = load(e)
    assert [(x.sync, x.key) for x in errors] == [("s1", "channel")]
    assert "email, sms, ads or crm" in errors[0].message
    assert errors_for(channel="fax") == [("channel", "'fax' is not one of email, sms, ads, crm")]


@pytest.mark.parametrize("channel", ["email", "sms", "ads"])
def test_a_consent_channel_needs_a_mode_that_removes(channel):
    (err,) = errors_for(channel=channel, mode="upsert")
    assert err[0] == "mode" and "never removes" in err[1] and channel in err[1]
    specs, errors = load(exposure("s1", channel=channel, mode="membership", fields={}))
    assert not errors and specs[0].channel.value == channel


def test_consent_override_needs_a_reason():
    assert errors_for(channel="email", consent_override={})[0][0] == "consent_override.reason"
    (err,) = errors_for(channel="email", consent_override={"reason": "  why  "})
    assert err[0] == "consent_override.reason" and "say why" in err[1]
    specs, errors = load(exposure("s1", channel="email",
                                  consent_override={"reason": "transactional receipts, contract basis"}))
    assert not errors and specs[0].consent_override.reason == "transactional receipts, contract basis"


def test_a_model_without_profile_id_must_name_its_profile_key():
    COLUMNS["orders"] = ["order_id", "customer_profile", "total"]
    try:
        e = exposure("order_export", model="orders", primary_key="order_id", match_on={}, fields={"t": "total"})
        _, errors = load(e)
        assert [(x.sync, x.key) for x in errors] == [("order_export", "profile_key")]
        assert "profile_key: <column>" in errors[0].message and "orders" in errors[0].message
        specs, errors = load(exposure("order_export", model="orders", primary_key="order_id", match_on={},
                                      fields={"t": "total"}, profile_key="customer_profile"))
        assert not errors and specs[0].profile_key == "customer_profile"
    finally:
        del COLUMNS["orders"]
