"""Marts behaviour on a generated world: consent rules, scores, segments.

Reads the session's `built_warehouse` (tests/conftest.py), built with outflow_as_of
pinned to the generated world's "now".
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, VENV_BIN, dbt, query

pytestmark = pytest.mark.slow

CHANNELS = ("email", "sms", "ads")
GRADES = ("A", "B", "C", "D", "F")


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    return query(warehouse, sql)


def _world_now(warehouse: Path) -> datetime:
    """The generated world's "now": its start date plus the days applied since."""
    start, last_day = _rows(warehouse, "select start_date, last_day from generator_truth.runs")[0]
    start = start if isinstance(start, date) else date.fromisoformat(str(start))
    return datetime.combine(start, datetime.min.time()) + timedelta(days=int(last_day or 0))


def _build_as_of(warehouse: Path) -> datetime:
    return _rows(warehouse, "select max(as_of_at) from lead_scores")[0][0]


@pytest.fixture(scope="module")
def wh(built_warehouse) -> Path:
    return built_warehouse


@pytest.fixture(scope="module")
def as_of(wh) -> datetime:
    return _build_as_of(wh)


def test_session_build_is_pinned_to_the_worlds_now(wh):
    """Recency windows and segments need outflow_as_of = the generated world's now."""
    assert _build_as_of(wh) == _world_now(wh)


def test_as_of_from_the_environment(warehouse_copy, tmp_path):
    """OUTFLOW_AS_OF pins "now" when the var is unset (so a daily build need not change
    --vars, which re-parses the whole project), and a new value re-parses no file (it is
    read when models compile and when Python models run); the var wins; a bad value is
    refused by name."""
    target = tmp_path / "target"
    compiled = target / "compiled" / "outflow" / "dbt_project" / "models" / "intermediate"
    engagement = compiled / "features" / "int_profiles__engagement.sql"
    select = ["compile", "--select", "int_profiles__engagement", "int_identity__match_model"]
    dbt(select, warehouse_copy, target, OUTFLOW_AS_OF="2026-02-03")
    assert "cast('2026-02-03' as timestamp)" in engagement.read_text()
    manifest = json.loads((target / "manifest.json").read_text())
    identity = manifest["nodes"]["model.outflow.int_identity__match_model"]["config"]["meta"]["identity"]
    assert identity["as_of"] in (None, "", "None")  # the Python models read the environment when they run

    dbt(select, warehouse_copy, target, OUTFLOW_AS_OF="2026-02-04")
    assert "cast('2026-02-04' as timestamp)" in engagement.read_text()
    last_run = (target / "logs" / "dbt.log").read_text().split("Running with dbt=")[-1]
    assert "Unable to do partial parsing" not in last_run
    assert "Partial parsing: updated file" not in last_run

    dbt([*select, "--vars", "{outflow_as_of: '2026-03-04'}"], warehouse_copy, target, OUTFLOW_AS_OF="2026-02-03")
    assert "cast('2026-03-04' as timestamp)" in engagement.read_text()

    bad = dbt(select, warehouse_copy, target, check=False, OUTFLOW_AS_OF="yesterday")
    assert bad.returncode != 0
    assert "env OUTFLOW_AS_OF" in bad.stdout and "'yesterday'" in bad.stdout


# --- segments ---------------------------------------------------------------


def test_every_segment_model_has_members(wh):
    seg_tables = {name[4:] for (name,) in _rows(
        wh, "select table_name from information_schema.tables where table_schema = 'main' and table_name like 'seg\\_%' escape '\\'")}
    sizes = dict(_rows(wh, "select segment, count(*) from segment_memberships group by segment"))
    assert len(seg_tables) >= 5
    assert set(sizes) == seg_tables, f"segments without members: {sorted(seg_tables - set(sizes))}"
    assert all(n > 0 for n in sizes.values())
    definitions = _rows(wh, "select segment, owner, priority, description from segment_definitions")
    assert {d[0] for d in definitions} == seg_tables
    assert all(owner and priority >= 1 and description for _, owner, priority, description in definitions)


def test_memberships_are_consistent(wh):
    assert _rows(wh, """
        select count(*) from segment_memberships m join profiles p using (profile_id)
        where p.is_deletion_requested""")[0][0] == 0
    # exactly one primary segment per member, and it has the lowest priority number
    bad = _rows(wh, """
        select profile_id from segment_memberships group by profile_id
        having count(case when is_primary then 1 end) <> 1
            or min(priority) <> min(case when is_primary then priority end)""")
    assert bad == []
    owners = _rows(wh, "select segment, count(distinct owner), count(distinct priority) from segment_memberships group by 1")
    assert all(o == 1 and p == 1 for _, o, p in owners)


def test_segments_follow_their_definitions(wh, as_of):
    # cart abandoners: a cart/checkout event in the last 7 days and no order since the latest one
    assert _rows(wh, f"""
        with last_cart as (
            select profile_id, max(occurred_at) as at from int_web_events__attributed
            where event_type in ('add_to_cart', 'checkout_start') and occurred_at <= '{as_of}'
            group by profile_id)
        select count(*) from seg_cart_abandoners s join last_cart c using (profile_id)
        where c.at <= timestamp '{as_of}' - interval 7 day
           or exists (select 1 from int_orders__attributed o where o.profile_id = s.profile_id
                      and o.status in ('completed', 'pending') and o.ordered_at >= c.at
                      and o.ordered_at <= '{as_of}')""")[0][0] == 0
    assert _rows(wh, """select count(*) from seg_lapsed_customers s join profiles p using (profile_id)
                        where not p.is_customer or p.recency_days < 90""")[0][0] == 0
    assert _rows(wh, """select count(*) from seg_sales_ready_leads s join lead_scores l using (profile_id)
                        where l.grade not in ('A', 'B')""")[0][0] == 0
    assert _rows(wh, f"""select count(*) from seg_onboarding_nurture s join consent c using (profile_id)
                         where c.channel = 'email' and (c.status <> 'granted'
                               or c.updated_at <= timestamp '{as_of}' - interval 14 day)""")[0][0] == 0


def test_segments_find_the_planted_behaviour(wh):
    """Against generator truth: each lifecycle segment is enriched in its archetype."""
    rows = _rows(wh, """
        with person as (
            select distinct i.profile_id, p.archetype
            from identity_map i
            join generator_truth.contact_people cp using (source_system, contact_id)
            join generator_truth.people p using (person_id))
        select s.segment, person.archetype, count(*)
        from segment_memberships s join person using (profile_id) group by all""")
    base = dict(_rows(wh, "select archetype, count(*) / sum(count(*)) over () from generator_truth.people group by 1"))
    per_segment: dict[str, dict[str, int]] = defaultdict(dict)
    for segment, archetype, n in rows:
        per_segment[segment][archetype] = n
    for segment, archetype in (("cart_abandoners", "abandoner"), ("onboarding_nurture", "new"), ("vip_customers", "vip")):
        counts = per_segment[segment]
        share = counts.get(archetype, 0) / sum(counts.values())
        assert share >= 3 * base[archetype], f"{segment}: {share:.2f} {archetype} vs base rate {base[archetype]:.2f}"


# --- consent ----------------------------------------------------------------


def _expected_consent(wh: Path, as_of: datetime) -> dict[tuple[str, str], tuple[str, str]]:
    """The consent rules, re-implemented in Python from the attributed activity."""
    profiles = [p for (p,) in _rows(wh, "select profile_id from profiles")]
    deleted = {p for (p,) in _rows(wh, f"""
        select profile_id from int_deletion_requests__attributed
        where profile_id is not null and (requested_at is null or requested_at <= '{as_of}')""")}
    # signal = (time, is_grant, reason); ESP events judged per address for hard bounces
    signals: dict[tuple[str, str], list[tuple[datetime, bool, str]]] = defaultdict(list)
    for p, channel, status, source, at in _rows(wh, f"""
            select profile_id, channel, status, coalesce(source, ''), occurred_at from int_consent_events__attributed
            where profile_id is not null and occurred_at <= '{as_of}'
              and channel in ('email', 'sms', 'ads') and status in ('granted', 'revoked')"""):
        if status == "granted":
            signals[p, channel].append((at, True, "opted_in"))
        else:
            reason = ("unsubscribed" if "unsub" in source else "spam_report" if ("spam" in source or "complaint" in source)
                      else "bounced" if "bounce" in source else "manual")
            signals[p, channel].append((at, False, reason))
    esp = _rows(wh, """select a.profile_id, s.email, s.event_type, s.occurred_at
                       from int_email_events__attributed a join stg_esp__email_events s using (event_id)""")
    reached: dict[str, datetime] = {}
    for _, email, kind, at in esp:
        if kind in ("delivered", "open", "click") and email is not None:
            reached[email] = max(at, reached.get(email, at))
    for p, email, kind, at in esp:
        if p is None or at > as_of:
            continue
        hard = kind == "bounce" and (email not in reached or reached[email] < at)
        if kind in ("unsubscribe", "spam_report") or hard:
            reason = {"unsubscribe": "unsubscribed", "spam_report": "spam_report", "bounce": "bounced"}[kind]
            signals[p, "email"].append((at, False, reason))
    expected = {}
    for p in profiles:
        for channel in CHANNELS:
            events = signals.get((p, channel), [])
            if p in deleted:
                expected[p, channel] = ("revoked", "deletion_requested")
            elif not events:
                expected[p, channel] = ("not_granted", "never_granted")
            else:
                latest = max(events, key=lambda e: (e[0], not e[1]))  # revoke wins ties
                if latest[1]:
                    expected[p, channel] = ("granted", "opted_in")
                else:
                    grants = [e[0] for e in events if e[1]]
                    since = max(grants) if grants else None
                    causes = sorted(e for e in events if not e[1] and (since is None or e[0] >= since))
                    expected[p, channel] = ("revoked", causes[0][2])
    return expected


def test_every_consent_row_follows_the_rules(wh, as_of):
    actual = {(p, c): (s, r) for p, c, s, r in _rows(wh, "select profile_id, channel, status, reason from consent")}
    expected = _expected_consent(wh, as_of)
    assert set(actual) == set(expected)
    wrong = [(key, actual[key], expected[key]) for key in expected if actual[key] != expected[key]]
    # Equal-timestamp ties between two revoking signals may legitimately pick either reason.
    assert len(wrong) <= len(expected) * 0.001, wrong[:10]
    # the generated world exercises every rule
    reasons = {r for _, r in actual.values()}
    assert {"opted_in", "unsubscribed", "bounced", "deletion_requested", "never_granted", "manual"} <= reasons


def test_unsubscribe_after_grant_revokes_email(wh, as_of):
    rows = _rows(wh, f"""
        with grants as (
            select profile_id, max(occurred_at) as at from int_consent_events__attributed
            where channel = 'email' and status = 'granted' and occurred_at <= '{as_of}' group by 1),
        unsubs as (
            select profile_id, max(occurred_at) as at from int_email_events__attributed
            where event_type = 'unsubscribe' and occurred_at <= '{as_of}' group by 1)
        select c.status, c.reason, count(*)
        from unsubs u join grants g using (profile_id) join consent c using (profile_id)
        join profiles p using (profile_id)
        where c.channel = 'email' and u.at > g.at and not p.is_deletion_requested
        group by all""")
    assert rows, "the generated world has no unsubscribe after a grant"
    assert all(s == "revoked" for s, _, _ in rows)
    by_reason = {r: n for _, r, n in rows}
    assert by_reason.get("unsubscribed", 0) >= 0.9 * sum(by_reason.values()), by_reason


def test_deletion_requests_revoke_every_channel(wh):
    # from the raw request (normalised email) to the profile that holds that address
    requested = {p for (p,) in _rows(wh, """
        select distinct p.profile_id
        from raw.deletion_requests d
        join stg_crm__contacts c on lower(trim(d.email)) = c.email
        join identity_map p on p.source_system = c.source_system and p.contact_id = c.contact_id""")}
    assert requested, "the generated world has no deletion request for a known contact"
    rows = _rows(wh, "select profile_id, channel, status, reason from consent where reason = 'deletion_requested'")
    revoked = defaultdict(set)
    for p, channel, status, _ in rows:
        assert status == "revoked"
        revoked[p].add(channel)
    assert requested <= set(revoked)
    assert all(channels == set(CHANNELS) for channels in revoked.values())


# --- lead scores -------------------------------------------------------------


def test_scores_in_range_and_grades_monotone(wh):
    bounds = dict((g, (lo, hi)) for g, lo, hi in _rows(wh, "select grade, min(score), max(score) from lead_scores group by 1"))
    assert 0 <= min(lo for lo, _ in bounds.values()) and max(hi for _, hi in bounds.values()) <= 100
    present = [g for g in GRADES if g in bounds]
    for better, worse in zip(present, present[1:]):
        assert bounds[better][0] > bounds[worse][1], f"grade {better} overlaps {worse}: {bounds}"
    # components add up to the score (before clamping)
    assert _rows(wh, """select count(*) from lead_scores
                        where score <> greatest(0, least(100, round(fit_points + behaviour_points + penalty_points)))""")[0][0] == 0


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    pos = labels.sum()
    neg = len(labels) - pos
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def test_score_ranks_converters_first(wh):
    rows = _rows(wh, """
        select s.score, exists(select 1 from int_conversions__attributed c where c.profile_id = s.profile_id)
        from lead_scores s""")
    scores = np.array([r[0] for r in rows], dtype=float)
    converted = np.array([r[1] for r in rows], dtype=bool)
    assert 20 <= converted.sum() < len(converted)
    auc = _auc(scores, converted)
    assert auc >= 0.6, f"AUC of points score vs conversions = {auc:.3f}"


def test_auc_helper():
    assert _auc(np.array([1, 2, 3, 4.0]), np.array([False, False, True, True])) == 1.0
    assert _auc(np.array([1, 1, 1, 1.0]), np.array([False, True, False, True])) == 0.5


# --- adding a segment ----------------------------------------------------------


def _project_copy(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project.yml", project / "dbt_project.yml")
    shutil.copytree(REPO_ROOT / "dbt_project", project / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    return project


def test_adding_a_segment_is_one_model_one_yml_entry_and_one_line(wh, tmp_path):
    project = _project_copy(tmp_path)
    warehouse = tmp_path / "copy.duckdb"
    shutil.copy(wh, warehouse)
    segments = project / "dbt_project" / "models" / "marts" / "segments"
    (segments / "seg_probe_high_fit.sql").write_text(
        "select profile_id, 'fit ' || cast(fit_points as varchar) as reason\n"
        "from {{ ref('lead_scores') }} where fit_points >= 20\n"
    )
    select = ["build", "-s", "seg_probe_high_fit", "segment_memberships", "--vars", f"{{outflow_as_of: '{_build_as_of(wh)}'}}"]

    # 1. not wired into segment_memberships: the error names the line to add
    proc = dbt(select, warehouse, tmp_path / "target", project, check=False)
    assert proc.returncode != 0
    assert "-- depends_on: {{ ref('seg_probe_high_fit') }}" in proc.stdout

    # 2. wired but no yml entry: the error asks for the owner
    memberships = segments / "segment_memberships.sql"
    memberships.write_text(memberships.read_text().replace(
        "-- depends_on: {{ ref('seg_vip_customers') }}",
        "-- depends_on: {{ ref('seg_vip_customers') }}\n-- depends_on: {{ ref('seg_probe_high_fit') }}"))
    proc = dbt(select, warehouse, tmp_path / "target", project, check=False)
    assert proc.returncode != 0
    assert "seg_probe_high_fit has no owner" in proc.stdout

    # 3. with its yml entry the segment is in segment_memberships, owner and priority from the yml
    (segments / "_probe.yml").write_text(
        "version: 2\nmodels:\n  - name: seg_probe_high_fit\n    description: Probe segment.\n"
        "    config:\n      meta: {owner: probe-team, priority: 7}\n"
    )
    dbt(select, warehouse, tmp_path / "target", project)
    rows = _rows(warehouse, """select count(*), min(owner), min(priority), min(reason) from segment_memberships
                               where segment = 'probe_high_fit'""")
    expected = _rows(warehouse, """select count(*) from lead_scores l join profiles p using (profile_id)
                                   where l.fit_points >= 20 and not p.is_deletion_requested""")[0][0]
    assert rows[0][0] == expected > 0
    assert rows[0][1:3] == ("probe-team", 7)
    assert rows[0][3].startswith("fit ")
