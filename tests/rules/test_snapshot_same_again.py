"""A snapshot delivered again as it was (include/etl/warehouse/snapshot.py, "The same
snapshot again"): its silver step records the delivery as the earlier batch's and neither
cleans nor compares it, only when doing so is sure to change nothing.

Each test delivers bronze rows for some batches with the file hash the convert task
records (``tools.file_audit_log.file_sha256``), runs the silver step of each as the DAG
runs it, and compares silver, ``tools.snapshot_delivery`` and ``tools.snapshot_vanished``
with rows a reader can check by hand. The last test runs the real template's step on a
batch skipped and on the same batch compared in full, and finds the same rows.
"""

from __future__ import annotations

from include.etl.warehouse.snapshot import same_snapshot, step_digest, table_columns
from tests.rules.tables import expect, given, run_step

B1, B2, B3, B4 = "BATCH000001", "BATCH000002", "BATCH000003", "BATCH000004"
SILVER = "silver_client1.crm_cust_info"
BRONZE = "bronze_client1.crm_cust_info"

CUSTOMERS = """
    cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
    1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
    2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03
"""
TWO_CUSTOMERS = """
    cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
    1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
    2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
"""


def delivered(conn, table: str, rows: str, batch: str, sha256: str, logical: str = "cust_info") -> None:
    """A file of ``logical`` loaded into bronze for ``batch``, its hash recorded as the
    convert task records it."""
    given(conn, table, rows, batch=batch)
    conn.execute(
        """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
           VALUES ('client1', %s, 'start', 'test') ON CONFLICT DO NOTHING""",
        (batch,),
    )
    conn.execute(
        """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file, source_system,
               file_sha256)
           VALUES ('client1', %s, %s, 'crm', %s)
           ON CONFLICT (client_schema, batch_id, logical_source_file)
           DO UPDATE SET file_sha256 = EXCLUDED.file_sha256""",
        (batch, logical, sha256),
    )


def silver(conn, client_dags, batch: str, step: str = "crm_cust_info") -> None:
    run_step(conn, client_dags["client1"], f"silver.{step}", batch)


def deliveries(conn, table: str = SILVER) -> list[tuple]:
    return conn.execute(
        """SELECT batch_id, delivered_rows, changed_rows, vanished_keys, same_as_batch
           FROM tools.snapshot_delivery WHERE client_schema = 'client1' AND table_name = %s
           ORDER BY batch_id""",
        (table,),
    ).fetchall()


def test_the_same_snapshot_again_is_recorded_as_the_earlier_batch_s(conn, client1, client_dags) -> None:
    """B2 delivers B1's file again: B2's delivery is B1's three rows, none changed,
    none vanished, and silver keeps B1's rows only."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, CUSTOMERS, B2, "sha-1")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 0, 0, B1)]
    expect(conn, f"SELECT cst_id, cst_lastname, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | dwh_batch_id
        1      | Yang         | BATCH000001
        2      | Lee          | BATCH000001
        3      | Ka           | BATCH000001
    """)  # fmt: skip


def test_the_same_hash_with_other_bronze_rows_is_compared(conn, client1, client_dags) -> None:
    """B2's file has B1's hash, but its bronze rows differ (the same file loaded under
    another config): compared in full, and the changed customer is kept."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, CUSTOMERS.replace("Yang ", "Yung "), B2, "sha-1")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 1, 0, None)]
    expect(conn, f"SELECT cst_id, cst_lastname FROM {SILVER} WHERE dwh_batch_id = %s", """
        cst_id | cst_lastname
        1      | Yung
    """, params=(B2,))  # fmt: skip


def test_rows_in_another_order_are_compared(conn, client1, client_dags) -> None:
    """B2 holds B1's rows in another order under the same hash: a key's latest row can be
    the later one in the file, so the rows are matched by their number and B2 is compared
    (it changes nothing)."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    lines = CUSTOMERS.strip().splitlines()
    delivered(conn, BRONZE, "\n".join([lines[0], lines[3], lines[1], lines[2]]), B2, "sha-1")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 0, 0, None)]


def test_another_file_is_compared(conn, client1, client_dags) -> None:
    """The same rows from a file of another hash are compared: the hash is what says
    whether the bronze rows are worth comparing, the rows whether the step may skip."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, CUSTOMERS, B2, "sha-2")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 0, 0, None)]


def test_a_snapshot_taken_by_another_step_is_compared(conn, client1, client_dags) -> None:
    """B1's delivery was taken by another version of the step (another SQL, key, columns
    or migrations: another digest): B2, the same file again, is compared, since the step
    as it is now might clean B1's rows differently."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    silver(conn, client_dags, B1)
    conn.execute(
        "UPDATE tools.snapshot_delivery SET step_digest = 'an older step' WHERE batch_id = %s", (B1,)
    )
    delivered(conn, BRONZE, CUSTOMERS, B2, "sha-1")
    silver(conn, client_dags, B2)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 0, 0, None)]


def test_a_step_that_reads_the_clock_is_never_the_same_snapshot(conn, client1, client_dags) -> None:
    """erp_cust_az12 drops birth dates after ``current_date``: the same rows can clean
    differently another day, so its snapshot delivered again is compared (by the keys
    dated between the two days, none here: tests/rules/test_snapshot_clock.py)."""
    rows = """
        cid         | bdate      | gen
        NASAW1      | 1980-01-01 | M
        AW2         | 2999-01-01 | F
    """
    table = "silver_client1.erp_cust_az12"
    for batch in (B1, B2):
        delivered(conn, "bronze_client1.erp_cust_az12", rows, batch, "sha-az", logical="CUST_AZ12")
        silver(conn, client_dags, batch, "erp_cust_az12")

    assert deliveries(conn, table) == [(B1, 2, 2, 0, None), (B2, 2, 0, 0, None)]


def test_a_vanished_key_stays_vanished_through_the_same_snapshot(conn, client1, client_dags) -> None:
    """B2 no longer holds customer 3; B3 delivers B2's file again (recorded as B2's, not
    compared); B4 holds customer 3 again. Customer 3 vanished once, in B2, and comes
    back in B4 as a new row: the skipped B3 left silver's current rows as B2's."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, TWO_CUSTOMERS, B2, "sha-2")
    delivered(conn, BRONZE, TWO_CUSTOMERS, B3, "sha-2")
    delivered(conn, BRONZE, CUSTOMERS, B4, "sha-1")
    for batch in (B1, B2, B3, B4):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [
        (B1, 3, 3, 0, None),
        (B2, 2, 0, 1, None),
        (B3, 2, 0, 0, B2),
        (B4, 3, 1, 0, None),  # B1's file again, but B3's was the delivery before it: compared
    ]
    assert conn.execute(
        "SELECT batch_id, key FROM tools.snapshot_vanished WHERE client_schema = 'client1' ORDER BY batch_id"
    ).fetchall() == [(B2, [3])]
    expect(conn, f"SELECT cst_id, dwh_batch_id FROM {SILVER}", """
        cst_id | dwh_batch_id
        1      | BATCH000001
        2      | BATCH000001
        3      | BATCH000001
        3      | BATCH000004
    """)  # fmt: skip


def test_restarting_the_earlier_batch_with_another_file_compares_the_later_one(
    conn, client1, client_dags
) -> None:
    """B2 repeated B1's file and was not compared. B1 is then restarted with a fixed
    file (another hash, customer 1 misspelt): B2 runs again after it, in the same
    transaction, and is now compared with B1's new rows, so B2's customer 1 is kept,
    as if the two batches had run in order with these files."""
    delivered(conn, BRONZE, TWO_CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, TWO_CUSTOMERS, B2, "sha-1")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)
    assert deliveries(conn) == [(B1, 2, 2, 0, None), (B2, 2, 0, 0, B1)]

    conn.execute(f"DELETE FROM {BRONZE} WHERE dwh_batch_id = %s", (B1,))
    delivered(conn, BRONZE, TWO_CUSTOMERS.replace("Yang ", "Yung "), B1, "sha-fixed")
    conn.execute("DELETE FROM tools.sql_step_state WHERE client_schema = 'client1' AND batch_id = %s", (B1,))
    silver(conn, client_dags, B1)

    assert deliveries(conn) == [(B1, 2, 2, 0, None), (B2, 2, 1, 0, None)]
    expect(conn, f"SELECT cst_id, cst_lastname, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | dwh_batch_id
        1      | Yung         | BATCH000001
        2      | Lee          | BATCH000001
        1      | Yang         | BATCH000002
    """)  # fmt: skip


def test_a_step_that_does_more_than_delete_and_insert_is_compared(conn, client1, client_dags) -> None:
    """``same_snapshot`` says yes only for a step of the batch's delete and one insert
    reading bronze: a step with another statement, or whose insert also reads silver,
    might clean the same rows differently, so it says no."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    silver(conn, client_dags, B1)
    delivered(conn, BRONZE, CUSTOMERS, B2, "sha-1")
    task = client_dags["client1"].get_task("silver.crm_cust_info")
    text = task.render_template(task.sql, {}, jinja_env=client_dags["client1"].get_template_env())
    files = {BRONZE: "cust_info"}
    columns = table_columns(conn, SILVER)

    def same(sql_text: str, digest_of: str | None = None):
        digest = step_digest(conn, "client1", digest_of or sql_text, ["cst_id"], columns)
        return same_snapshot(conn, "client1", SILVER, B2, sql_text, digest, files)

    assert same(text) is not None and same(text).base == B1  # the step as it is
    more = text + ";\nUPDATE silver_client1.crm_cust_info SET cst_key = cst_key"
    assert same(more, digest_of=text) is None
    reads_silver = text.replace(
        f"FROM {BRONZE} AS b", f"FROM {BRONZE} AS b JOIN {SILVER} AS s USING (cst_id)"
    )
    assert reads_silver != text and same(reads_silver, digest_of=text) is None


def test_skipped_and_compared_in_full_give_the_same_rows(conn, client1, client_dags) -> None:
    """The real step, B2 the same file as B1 with a customer delivered twice (the later
    row wins) and blanks the cleaning trims: skipped, then the same B2 compared in full
    (its hash changed by hand). Silver, the delivery counts and the vanished keys are the
    same both ways."""
    rows = """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | ' Jon '      | Yang         | m                  | M        | 2024-01-01
        2      | AW2     | Ann          | Lee          | S                  | f        |
        2      | AW2     | Anne         | Lee          | S                  | F        |             # the later row
        4      |         | Di           | Wu           |                    |          | 2024-01-04
    """
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    delivered(conn, BRONZE, rows, B2, "sha-2")
    delivered(conn, BRONZE, rows, B3, "sha-2")
    for batch in (B1, B2, B3):
        silver(conn, client_dags, batch)
    rows_now = f"SELECT * FROM {SILVER} ORDER BY cst_id, dwh_batch_id"
    skipped = (conn.execute(rows_now).fetchall(), deliveries(conn))
    assert skipped[1][-1] == (B3, 3, 0, 0, B2)

    conn.execute("UPDATE tools.file_audit_log SET file_sha256 = 'sha-3' WHERE batch_id = %s", (B3,))
    conn.execute("DELETE FROM tools.sql_step_state WHERE client_schema = 'client1' AND batch_id = %s", (B3,))
    silver(conn, client_dags, B3)
    compared = (conn.execute(rows_now).fetchall(), deliveries(conn))

    assert compared[1][-1] == (B3, 3, 0, 0, None)
    assert skipped[0] == compared[0]
    assert skipped[1][:-1] == compared[1][:-1]


def test_a_day_whose_rows_all_clean_away_changes_nothing(conn, client1, client_dags) -> None:
    """B2's file holds only rows without a customer id (the cleaning drops them): as when
    comparing every key, nothing came, so no key vanishes and nothing is recorded, though
    B2's rows are compared by the changed keys only."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    no_ids = """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
               | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
               | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    """
    delivered(conn, BRONZE, no_ids, B2, "sha-2")
    for batch in (B1, B2):
        silver(conn, client_dags, batch)

    assert deliveries(conn) == [(B1, 3, 3, 0, None)]
    assert conn.execute(
        "SELECT count(*) FROM tools.snapshot_vanished WHERE client_schema = 'client1'"
    ).fetchone() == (0,)


def test_a_base_whose_bronze_was_reloaded_since_is_compared_in_full(conn, client1, client_dags) -> None:
    """B1's bronze is loaded again with another file (a new table of its rows, as a load
    makes) but its silver step has not run again: silver still holds B1's first rows. B2
    delivers B1's new file: it is compared in full, not recorded as B1's again, and the
    customer the new file changed is kept."""
    delivered(conn, BRONZE, CUSTOMERS, B1, "sha-1")
    silver(conn, client_dags, B1)
    conn.execute(f"DELETE FROM {BRONZE} WHERE dwh_batch_id = %s", (B1,))
    conn.execute(
        f"CREATE TABLE {BRONZE}__batch000001 (CHECK (dwh_batch_id = 'BATCH000001')) INHERITS ({BRONZE})"
    )
    renamed = CUSTOMERS.replace("Yang ", "Yung ")
    given(conn, f"{BRONZE}__batch000001", renamed, batch=B1)
    conn.execute("UPDATE tools.file_audit_log SET file_sha256 = 'sha-new' WHERE batch_id = %s", (B1,))
    delivered(conn, BRONZE, renamed, B2, "sha-new")
    silver(conn, client_dags, B2)

    assert deliveries(conn) == [(B1, 3, 3, 0, None), (B2, 3, 1, 0, None)]
    assert conn.execute(
        "SELECT compared_keys FROM tools.snapshot_delivery WHERE client_schema = 'client1' AND batch_id = %s",
        (B2,),
    ).fetchone() == (None,)
    expect(conn, f"SELECT cst_id, cst_lastname FROM {SILVER} WHERE dwh_batch_id = %s", """
        cst_id | cst_lastname
        1      | Yung
    """, params=(B2,))  # fmt: skip
