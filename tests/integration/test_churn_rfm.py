"""RFM in buy-till-you-die conventions, checked exactly against the CDNOW summary that ships
with the `lifetimes` package, through the raw contract and a real dbt build.

../shared/data/cdnow_lifetimes/README: cdnow_customers_summary.csv (2,357 customers: ID,
frequency, recency, T) derives from CDNOW_sample.txt (its second column is that ID),
in weeks, with the observation period ending 1997-09-30 (the 39-week calibration period
of Fader, Hardie & Lee 2005). Every transaction of the sample is loaded, including those
after that date, which the as-of must leave out.
"""

from __future__ import annotations

import csv
import datetime as dt

import duckdb
import pytest

from tests.conftest import dbt

pytestmark = pytest.mark.slow

AS_OF = "1997-09-30"


def _load_cdnow(warehouse, folder) -> int:
    orders = []
    with open(folder / "CDNOW_sample.txt") as f:
        for n, line in enumerate(f):
            _, customer, day, _cds, dollars = line.split()
            orders.append((f"o{n}", f"c{int(customer)}", float(dollars),
                           dt.datetime.strptime(day, "%Y%m%d")))
    customers = sorted({o[1] for o in orders})
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    contact_columns = ("contact_id, source_system, email, phone, first_name, last_name, street_address, city, "
                       "postal_code, country, date_of_birth, company, job_title, industry, employee_count, "
                       "lead_source, lifecycle_stage, created_at, updated_at")
    con.execute(f"create table raw.crm_contacts as select {', '.join(f'null::varchar as {c}' for c in contact_columns.split(', '))} where false")
    con.executemany("insert into raw.crm_contacts (contact_id, source_system, email) values (?, 'shop', ?)",
                    [(c, f"{c}@cdnow.example.com") for c in customers])
    con.execute("""create table raw.orders (order_id varchar, contact_id varchar, email varchar, amount double,
                   currency varchar, status varchar, ordered_at timestamp)""")
    con.executemany("insert into raw.orders values (?, ?, null, ?, 'USD', 'completed', ?)", orders)
    con.close()
    return len(customers)


def test_rfm_matches_the_cdnow_summary_exactly(tmp_path, shared_data):
    folder = shared_data / "cdnow_lifetimes"
    warehouse = tmp_path / "cdnow.duckdb"
    assert _load_cdnow(warehouse, folder) == 2357
    dbt(["build", "--vars", f"{{outflow_as_of: '{AS_OF}'}}"],
        warehouse, tmp_path / "target")

    with open(folder / "cdnow_customers_summary.csv") as f:
        expected = {f"c{int(r['ID'])}": (int(r["frequency"]), r["recency"], r["T"]) for r in csv.DictReader(f)}
    with open(folder / "cdnow_customers_summary_with_transactions.csv") as f:
        expected_value = {f"c{int(r['ID'])}": r["zbar"] for r in csv.DictReader(f)}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute("""
            select identity_map.contact_id, p.btyd_frequency, p.btyd_recency_days, p.btyd_t_days, p.btyd_monetary_usd
            from main.profiles as p
            join main.identity_map on identity_map.profile_id = p.profile_id""").fetchall()
        fit = con.execute("select status, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, gamma_gamma_p, gamma_gamma_q, "
                          "gamma_gamma_v from main.int_churn__model_fit").fetchall()[0]
        churn = con.execute("""select identity_map.contact_id, p.p_alive, p.churn_risk from main.profiles as p
                               join main.identity_map using (profile_id)""").fetchall()

    assert len(got) == len(expected) == 2357
    mismatches = []
    for contact, frequency, recency_days, t_days, monetary in got:
        # the summary is in weeks, rounded to two decimals: days / 7, formatted the same way
        ours = (frequency, f"{recency_days / 7:.2f}", f"{t_days / 7:.2f}")
        theirs = (expected[contact][0], f"{float(expected[contact][1]):.2f}", f"{float(expected[contact][2]):.2f}")
        # zbar is rounded half-up to cents: within half a cent
        if ours != theirs or abs(monetary - float(expected_value[contact])) > 0.005 + 1e-9:
            mismatches.append((contact, ours, theirs, monetary, expected_value[contact]))
    assert mismatches == [], f"{len(mismatches)} customers differ, e.g. {mismatches[:5]}"

    # The fit on the same data gives the published CDNOW parameters (Fader, Hardie & Lee
    # 2005: r 0.243, alpha 4.414 weeks, a 0.793, b 2.426; Gamma-Gamma p 6.25, q 3.74, v 15.44).
    status, r, alpha, a, b, p, q, v = fit
    assert status == "fitted"
    assert (round(r, 3), round(alpha / 7, 3), round(a, 3), round(b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert (round(p, 2), round(q, 2), round(v, 2)) == (6.25, 3.74, 15.44)
    p_alive = {contact: alive for contact, alive, _ in churn}
    assert all(abs(risk - (1 - alive)) < 1e-12 for _, alive, risk in churn)
    # one-time buyers are alive by BG/NBD's assumption; customer 1 (2 repeats, last at week 30.43
    # of 38.86) and customer 2 (1 repeat at week 1.71) as lifetimes computes them
    assert p_alive["c3"] == 1.0
    # (lifetimes, from the summary's rounded weeks: 0.7266 and 0.2122; ours uses exact days)
    assert abs(p_alive["c1"] - 0.7266) < 1e-3 and abs(p_alive["c2"] - 0.2122) < 1e-3
