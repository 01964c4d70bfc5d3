"""Demo source database for client4: an online shop's ``shop.customers`` table, which the
application changes every day (the database source of client4, read incrementally).

``create`` fills it with ``rows`` customers whose ``updated_at`` spreads over the 30 days
before ``BASE``, two customers per timestamp (equal timestamps everywhere, at every mark),
and one in 997 with no ``updated_at`` at all (rejected by validation, with the reason).
``apply_day`` then applies one day of changes, each kind the incremental load must get
right:

* new customers (1% of the table), written during the day;
* updated customers (2%): another plan, a newer ``updated_at``;
* two customers written at exactly the day's last timestamp (equal at the next mark);
* a late row within the lookback (``updated_at`` an hour before the previous high);
* a late row outside it (five hours before: only a full load takes it);
* an out-of-order update: an older version of a customer whose newer version the
  warehouse already holds, written inside the lookback (it must not overwrite);
* a soft delete (``deleted = true``).

Everything is computed in SQL from the customer id (``generate_series``), so the same
arguments give the same table, and two million rows take seconds.

    python -m demo.app_source "$AIRFLOW_CONN_APP_SOURCE" --rows 5000
    python -m demo.app_source "$AIRFLOW_CONN_APP_SOURCE" --day 1
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import psycopg

BASE = datetime(2026, 1, 1, tzinfo=UTC)  # the first extract's high: the table's newest change
SPREAD_SECONDS = 30 * 24 * 3600

DDL = """
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    customer_id bigint PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL,
    country     text NOT NULL,
    plan        text NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz
);
-- What an application read incrementally should have: its changes found by an index.
CREATE INDEX customers_changes_idx ON shop.customers (updated_at, customer_id);
"""

# Two customers per timestamp (2k and 2k+1), spread over the 30 days before BASE; the
# newest at BASE itself. One in 997 has no updated_at.
FILL = """
INSERT INTO shop.customers
SELECT i,
       'Customer ' || i,
       'customer' || i || '@example.com',
       (ARRAY['DE', 'FR', 'US', 'GB', 'NL'])[1 + i %% 5],
       (ARRAY['free', 'pro', 'team'])[1 + (i * 7) %% 3],
       false,
       CASE WHEN i %% 997 = 0 THEN NULL
            ELSE %(base)s - make_interval(secs => ((%(rows)s - i) / 2 * 7919) %% %(spread)s) END
FROM generate_series(1, %(rows)s::bigint) AS i
"""


def create(conn: psycopg.Connection, rows: int) -> None:
    """The table as the first extract finds it."""
    with conn.transaction():
        conn.execute(DDL)
        conn.execute(FILL, {"base": BASE, "rows": rows, "spread": SPREAD_SECONDS})
        conn.execute("ANALYZE shop.customers")


def apply_day(conn: psycopg.Connection, day: int = 1) -> dict[str, int]:
    """One day of changes after the table's current high (see the module docstring).
    Returns how many rows of each kind were written."""
    with conn.transaction():
        found = conn.execute("SELECT max(updated_at), max(customer_id) FROM shop.customers").fetchone()
        assert found is not None
        high, rows = found
        start = high + timedelta(seconds=1)
        day_end = high + timedelta(days=1)
        new = max(2, rows // 100)
        written = {}
        written["new"] = conn.execute(
            """INSERT INTO shop.customers
               SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
                      (ARRAY['DE', 'FR', 'US', 'GB', 'NL'])[1 + i %% 5], 'free', false,
                      %(start)s + make_interval(secs => (i - %(first)s) * 80000.0 / %(new)s)
               FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i""",
            {"start": start, "first": rows + 1, "last": rows + new, "new": new},
        ).rowcount
        written["updated"] = conn.execute(
            """UPDATE shop.customers
               SET plan = CASE plan WHEN 'free' THEN 'pro' WHEN 'pro' THEN 'team' ELSE 'free' END,
                   updated_at = %(start)s + make_interval(secs => customer_id %% 80000)
               WHERE customer_id %% 50 = %(day)s %% 50 AND customer_id <= %(rows)s
                 AND customer_id NOT IN (1, 2, 3, 4, 5) AND updated_at IS NOT NULL""",
            {"start": start, "day": day, "rows": rows},
        ).rowcount
        # Two customers at exactly the day's last timestamp: the next mark is (day_end, id).
        written["equal_at_mark"] = conn.execute(
            "UPDATE shop.customers SET full_name = full_name || ' (moved)', updated_at = %s "
            "WHERE customer_id IN (1, 2)",
            (day_end,),
        ).rowcount
        written["late_within_lookback"] = conn.execute(
            "UPDATE shop.customers SET country = 'BE', updated_at = %s WHERE customer_id = 3",
            (high - timedelta(hours=1),),
        ).rowcount
        written["late_outside_lookback"] = conn.execute(
            "UPDATE shop.customers SET country = 'AT', updated_at = %s WHERE customer_id = 4",
            (high - timedelta(hours=5),),
        ).rowcount
        written["deleted"] = conn.execute(
            "UPDATE shop.customers SET deleted = true, updated_at = %s WHERE customer_id = 5",
            (start + timedelta(hours=2),),
        ).rowcount
    return written


def out_of_order(conn: psycopg.Connection, customer_id: int, hours_before_high: float = 1.0) -> None:
    """An older version of a customer written after a newer one was extracted: inside the
    lookback, so the next extract reads it; silver must keep the newer one."""
    with conn.transaction():
        found = conn.execute("SELECT max(updated_at) FROM shop.customers").fetchone()
        assert found is not None
        (high,) = found
        conn.execute(
            "UPDATE shop.customers SET plan = 'stale', updated_at = %s WHERE customer_id = %s",
            (high - timedelta(hours=hours_before_high), customer_id),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="the source database (a libpq URL)")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--day", type=int, help="apply this day's changes instead of creating the table")
    args = parser.parse_args()
    with psycopg.connect(args.url, autocommit=True) as conn:
        if args.day:
            print(apply_day(conn, args.day))
        else:
            create(conn, args.rows)


if __name__ == "__main__":
    main()
