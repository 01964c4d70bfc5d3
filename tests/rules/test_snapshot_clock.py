"""A snapshot step that compares bronze dates with today's (``bronze_key.clock``: client1's
ERP birth dates, a birth date in the future is NULL) is compared by its changed keys plus
the keys whose date lies between the day the base delivery was compared and today: the
only rows that clean differently on another day (include/etl/warehouse/snapshot.py).

A base compared days ago is made here as that day's run would have left it: its delivery
recorded ten days back, and the row whose birth date was then in the future cleaned to
NULL. Any other use of the clock in the step compares every key.
"""

from __future__ import annotations

import datetime

import pytest

from include.etl.config import BronzeKey
from include.etl.warehouse.snapshot import ChangedOnly, batch_step_text
from tests.rules.tables import expect, given, run_step

B1, B2 = "BATCH000001", "BATCH000002"
BRONZE, SILVER = "bronze_client1.erp_cust_az12", "silver_client1.erp_cust_az12"


def delivered(conn, rows: str, batch: str) -> None:
    """The ERP customer file loaded into bronze for ``batch`` (its hash recorded per batch:
    a file of its own each day)."""
    given(conn, BRONZE, rows, batch=batch)
    conn.execute(
        """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
           VALUES ('client1', %s, 'start', 'test')""",
        (batch,),
    )
    conn.execute(
        """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file, source_system,
               file_sha256) VALUES ('client1', %s, 'CUST_AZ12', 'erp', %s)""",
        (batch, f"sha-{batch}"),
    )


def compared(conn, batch: str) -> tuple:
    return conn.execute(
        """SELECT delivered_rows, changed_rows, vanished_keys, same_as_batch, compared_keys
           FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND table_name = %s AND batch_id = %s""",
        (SILVER, batch),
    ).fetchone()


def test_a_birth_date_that_stopped_being_in_the_future_is_compared(conn, client1, client_dags) -> None:
    """B1 was compared ten days ago, when AW1's birth date (five days ago) was still in
    the future: silver holds it as NULL. B2 delivers the same rows today: nothing in its
    bronze changed, but AW1 now cleans to its date, so AW1 alone is compared and added;
    AW2 (1980) and AW3 (2999) clean as they did and are not compared."""
    passed = datetime.date.today() - datetime.timedelta(days=5)
    rows = f"""
        cid     | bdate      | gen
        NASAW1  | {passed}   | M
        AW-2    | 1980-01-01 | F
        AW3     | 2999-01-01 |
    """
    delivered(conn, rows, B1)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B1)
    # B1 as its run ten days ago left it
    conn.execute(f"UPDATE {SILVER} SET bdate = NULL WHERE cid = 'AW1'")
    conn.execute(
        """UPDATE tools.snapshot_delivery SET recorded_at = recorded_at - interval '10 days'
           WHERE client_schema = 'client1' AND table_name = %s AND batch_id = %s""",
        (SILVER, B1),
    )

    delivered(conn, rows, B2)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B2)

    expect(conn, f"SELECT cid, bdate, gen, dwh_batch_id FROM {SILVER} ORDER BY cid, dwh_batch_id", f"""
        cid | bdate      | gen    | dwh_batch_id
        AW1 |            | Male   | BATCH000001
        AW1 | {passed}   | Male   | BATCH000002
        AW2 | 1980-01-01 | Female | BATCH000001
        AW3 |            | n/a    | BATCH000001
    """)  # fmt: skip
    assert compared(conn, B2) == (3, 1, 0, None, 1)


def test_the_same_rows_on_the_same_day_compare_no_key(conn, client1, client_dags) -> None:
    """The same rows again the same day: no row changed and no date lies between the two
    days (a day either side of today is compared every day: the birth date of tomorrow)."""
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    rows = f"""
        cid     | bdate      | gen
        NASAW1  | 1980-01-01 | M
        AW2     | {tomorrow} | F
    """
    for batch in (B1, B2):
        delivered(conn, rows, batch)
        run_step(conn, client_dags["client1"], "silver.erp_cust_az12", batch)

    assert compared(conn, B2) == (2, 0, 0, None, 1)  # AW2, dated tomorrow, compared again
    expect(conn, f"SELECT cid, bdate, dwh_batch_id FROM {SILVER} ORDER BY cid", """
        cid | bdate      | dwh_batch_id
        AW1 | 1980-01-01 | BATCH000001
        AW2 |            | BATCH000001
    """)  # fmt: skip


@pytest.mark.parametrize(
    "edit",
    [
        ("bdate > current_date", "bdate > current_date - 1"),  # an offset
        ("bdate > current_date", "bdate > now()::date"),  # another clock
        ("CASE WHEN bdate", "CASE WHEN current_date > '2000-01-01' AND bdate"),  # another column
    ],
    ids=["offset", "now", "another-comparison"],
)
def test_another_use_of_the_clock_compares_every_key(conn, client1, client_dags, edit) -> None:
    """``bronze_key.clock`` holds only for a step that compares the dates with
    ``current_date`` itself: the step edited to read the clock any other way is compared
    in full, and the step as it is by its changed keys."""
    rows = """
        cid    | bdate      | gen
        NASAW1 | 1980-01-01 | M
    """
    delivered(conn, rows, B1)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B1)
    delivered(conn, rows, B2)
    dag = client_dags["client1"]
    task = dag.get_task("silver.erp_cust_az12")
    text = task.render_template(task.sql, {}, jinja_env=dag.get_template_env())
    files = {BRONZE: "CUST_AZ12"}
    bronze_key = BronzeKey(function="erp_cust_az12_cid", columns=["cid"], clock=["bdate"])
    assert edit[0] in text

    with conn.transaction():
        _, how = batch_step_text(conn, "client1", SILVER, ["cid"], text, B2, files, bronze_key)
        assert isinstance(how, ChangedOnly) and how.base == B1
        edited = text.replace(*edit)
        _, how = batch_step_text(conn, "client1", SILVER, ["cid"], edited, B2, files, bronze_key)
        assert how is None


def test_a_clock_column_that_is_not_a_date_fails_the_step(conn, client1, client_dags) -> None:
    rows = """
        cid    | bdate      | gen
        NASAW1 | 1980-01-01 | M
    """
    delivered(conn, rows, B1)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B1)
    delivered(conn, rows, B2)
    dag = client_dags["client1"]
    task = dag.get_task("silver.erp_cust_az12")
    text = task.render_template(task.sql, {}, jinja_env=dag.get_template_env())
    bronze_key = BronzeKey(function="erp_cust_az12_cid", columns=["cid"], clock=["gen"])
    with conn.transaction(), pytest.raises(ValueError) as failed:
        batch_step_text(conn, "client1", SILVER, ["cid"], text, B2, {BRONZE: "CUST_AZ12"}, bronze_key)
    assert str(failed.value) == (
        "silver_client1.erp_cust_az12: bronze_key.clock names gen, which is not a date column of "
        "bronze_client1.erp_cust_az12"
    )
