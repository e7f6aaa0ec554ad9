"""Fairness audit on the generated world: the reports cover every segment, score and group;
a bias planted in one segment (most of one country's new subscribers revoke their email
consent, so onboarding_nurture stops selecting them) is flagged, and was not before."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import SESSION_START_DATE, dbt, query

pytestmark = pytest.mark.slow


def test_reports_cover_every_segment_score_and_group(built_warehouse):
    segments = {s for (s,) in query(built_warehouse, "select segment from main.segment_definitions")}
    rows = query(built_warehouse, "select segment, dimension, group_value, group_profiles, selected_profiles, "
                                  "selection_rate, impact_ratio, is_small_group, is_flagged "
                                  "from main.fairness_selection_rates")
    assert {r[0] for r in rows} == segments and {r[1] for r in rows} == {"country", "age_band"}
    # the selection counts are the memberships, group by group
    (members,) = query(built_warehouse, "select count(*) from main.segment_memberships where segment = 'lapsed_customers'")
    assert sum(r[4] for r in rows if r[0] == "lapsed_customers" and r[1] == "country") == members[0]
    (audited,) = query(built_warehouse, "select count(*) from main.profiles where not is_deletion_requested")
    assert sum(r[3] for r in rows if r[0] == "lapsed_customers" and r[1] == "age_band") == audited[0]
    assert all(not r[8] for r in rows if r[7])  # small groups are never flagged
    scores = {r[0] for r in query(built_warehouse, "select distinct score_name from main.fairness_score_distribution")}
    assert {"lead_score", "churn_risk"} <= scores
    (lead,) = query(built_warehouse, """select sum(scored_profiles * mean_score) / sum(scored_profiles), max(overall_mean)
                                         from main.fairness_score_distribution
                                         where score_name = 'lead_score' and dimension = 'country'""")
    (mean_score,) = query(built_warehouse, """select avg(score) from main.lead_scores join main.profiles using (profile_id)
                                               where not is_deletion_requested""")
    assert lead[0] == pytest.approx(mean_score[0]) == pytest.approx(lead[1])


def test_a_planted_biased_segment_is_flagged(warehouse_copy, tmp_path):
    def onboarding(country: str | None = None):
        sql = ("select group_value, group_profiles, selected_profiles, impact_ratio, is_flagged "
               "from main.fairness_selection_rates where segment = 'onboarding_nurture' and dimension = 'country'")
        return {r[0]: r[1:] for r in query(warehouse_copy, sql)}

    before = onboarding()
    # plant against the group the segment favours most (the reference group)
    target = max((g for g in before if g != "unknown" and before[g][0] >= 30), key=lambda g: before[g][1] / before[g][0])
    assert not before[target][3]
    with duckdb.connect(str(warehouse_copy)) as con:
        emails = [e for (e,) in con.execute("""
            select p.email from main.segment_memberships m join main.profiles p using (profile_id)
            where m.segment = 'onboarding_nurture' and p.country_code = ? and p.email is not null
            order by p.profile_id""", [target]).fetchall()]
        revoked = emails[: int(len(emails) * 0.85)]
        assert len(revoked) >= 10
        for email in revoked:
            con.execute("insert into raw.consent_events (email, channel, status, source, occurred_at) "
                        "values (?, 'email', 'revoked', 'preference_centre', timestamp '2025-12-31 23:00:00')", [email])
    dbt(["build", "-s", "stg_consent__events+", "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"],
        warehouse_copy, tmp_path / "target")

    after = onboarding()
    # (a revoke reaches the profile its email attributes to: almost always the one planted)
    assert after[target][1] <= before[target][1] - 0.9 * len(revoked)
    assert after[target][2] < 0.8 and after[target][3], after[target]
    # the other groups' selections did not move
    assert {g: v[1] for g, v in after.items() if g != target} == {g: v[1] for g, v in before.items() if g != target}
