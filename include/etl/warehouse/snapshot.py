"""Snapshot deliveries: a file sent in full every day adds to silver only what changed.

A silver step declared ``delivery: snapshot`` (with the ``key`` of its table) runs its own
SQL as any step (the batch's rows, cleaned, de-duplicated, one per key), except that its
one ``INSERT INTO`` the table writes into a temporary table of the batch's snapshot
(``snapshot_rows``, like the table); the statements of ``diff_sql`` then compare those
rows with what the table held for each key before the batch, in the same transaction:

* **the current rows before the batch**: per key, its latest row among the earlier batches
  (``dwh_batch_id`` then ``dwh_row_number``), unless a batch after that row and before
  this one no longer held the key (``tools.snapshot_vanished``);
* a key of the batch whose row is **the same** (every column except the ``dwh_*`` lineage
  columns, compared by value) is not added: silver already holds it;
* a **new key or a changed row** is added: silver grows with the changes, not the days;
* a key held before and **absent** from the snapshot is recorded as vanished in
  ``tools.snapshot_vanished`` (its last row stays: silver is the history);
* ``tools.snapshot_delivery`` records the rows delivered, kept and the keys vanished.

A batch whose snapshot has no row (the file was optional and not delivered) changes
nothing: no key vanishes because a file did not come. Every statement is scoped to the
batch and deletes what an earlier run of it wrote first, so a cleared or re-run step
(restart, reprocessing) computes the same result. Key columns are compared with ``=``:
silver drops rows without a key (its ``not_null`` quality check says so).

**An earlier batch run again.** A batch is compared with the batches before it, so when
an earlier batch's rows change after later batches ran (a restart with a fixed file), the
later batches' comparisons are out of date: a key that a later batch delivered unchanged
would now show the earlier batch's new row, and a key the earlier batch now holds and a
later batch does not would never vanish. So the step, once it has run for its batch, runs
again in the same transaction for every later batch that delivered the table
(``later_deliveries``), in order: silver ends as if the batches had run in order with
these files. The batch's gold and view steps then also run for those later batches
(``recompared_batches``), after its own, so gold follows the later deliveries too. A
later batch whose bronze rows retention already deleted cannot be compared again: the
later runs stop before it, and the step's log says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from psycopg import sql

from include.etl.warehouse.connection import one_row
from include.etl.warehouse.sqlstep import relations_read

# Columns that say where and when a row came from, not what it holds.
LINEAGE_COLUMNS = ("dwh_batch_id", "dwh_source_file", "dwh_row_number", "dwh_loaded_at", "dwh_updated_at")


# Set before the step's own statements: the cleaning's sort and the comparison's hashes
# of a few hundred thousand rows then fit in memory (PostgreSQL's default of 4MB sorted the
# cleaning on disk), and no statement is JIT-compiled (a temporary table has no statistics:
# the planner's estimates of the comparison are far too high, and compiling a statement
# took longer than running it; the figures are in docs/benchmarks.md, session 13).
SETTINGS = "SET LOCAL work_mem = '256MB';\nSET LOCAL jit = off"


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class TableColumn(NamedTuple):
    """A column of a snapshot's silver table, as the catalog has it (``table_columns``)."""

    name: str
    type: str  # format_type: the SQL spelling of the type, e.g. numeric(10,2)
    category: str  # pg_type.typcategory: A an array, C a composite, N a number, S text...


# The names the comparison gives its own columns beside the table's (a table column of
# any of them is refused: ``diff_sql``).
DELIVERED, VANISHED_KEY, VERSION = "snapshot delivered", "snapshot vanished key", "snapshot version batch"


def diff_sql(client: str, target: str, key: Sequence[str], columns: Sequence[TableColumn]) -> str:
    """The statements that add to ``target`` (``schema.table``, a silver table) what the
    batch's cleaned snapshot, in the temporary table ``snapshot_rows``, changes (see the
    module docstring), with ``%(batch_id)s`` bound. ``columns``: the table's columns, in
    order (``table_columns``). Identifiers come from the validated config
    or the catalog and are quoted; the client and table names are written as quoted
    literals.

    One statement compares the snapshot with the current rows in one pass (a full join by
    the key) and writes both what changed and what vanished: reading the current rows is
    most of the comparison's cost, and a table of them written first and joined twice cost
    twice the pass (docs/benchmarks.md, session 20). The vanished keys recorded earlier
    are matched by the key's own types, not as JSON built for every current row: a key
    column is a single value (a number, text, a date...), not an array or a row."""
    if not key:
        raise ValueError(f"a snapshot delivery into {target} needs key columns")
    names = [column.name for column in columns]
    by_name = {column.name: column for column in columns}
    if missing := [k for k in key if k not in by_name]:
        raise ValueError(f"{target}: no key column {', '.join(missing)} (a snapshot delivery's key)")
    if clash := [name for name in names if name in (DELIVERED, VANISHED_KEY, VERSION)]:
        raise ValueError(f"{target}: a column may not be named {clash[0]!r} (a snapshot delivery's own)")
    if composite := [k for k in key if by_name[k].category in ("A", "C")]:
        k = composite[0]
        raise ValueError(
            f"{target}: the key column {k} is of type {by_name[k].type}: a snapshot delivery's key "
            "columns must hold single values (numbers, text, dates), not arrays or rows"
        )
    schema, table = target.split(".", 1)
    t = f"{_q(schema)}.{_q(table)}"
    c, name = _literal(client), _literal(target)
    keys = ", ".join(_q(k) for k in key)

    def cols(alias: str) -> str:
        return ", ".join(f"{alias}.{_q(k)}" for k in key)

    def same_key(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{_q(k)} = {b}.{_q(k)}" for k in key)

    compared = [col for col in names if col not in key and col not in LINEAGE_COLUMNS]

    def values(alias: str) -> str:
        return "(" + ", ".join(f"{alias}.{_q(col)}" for col in compared) + ")" if compared else "(NULL)"

    recorded_key = " AND ".join(f"(g.key ->> {i})::{by_name[k].type} = b.{_q(k)}" for i, k in enumerate(key))
    version = _q(VERSION)
    current = ", ".join([f"p.{_q(col)}" for col in (*key, *compared)] + [f"p.dwh_batch_id AS {version}"])
    every = ", ".join(_q(col) for col in names)
    scope = f"client_schema = {c} AND table_name = {name} AND batch_id = %(batch_id)s"
    return f"""
-- ---- snapshot delivery of {target}: add what changed (include/etl/warehouse/snapshot.py)
DELETE FROM tools.snapshot_vanished WHERE {scope};

DELETE FROM tools.snapshot_delivery WHERE {scope};

WITH latest AS (   -- per key, its latest row before the batch
    SELECT DISTINCT ON ({keys}) {current}
    FROM {t} AS p
    WHERE p.dwh_batch_id < %(batch_id)s
      AND EXISTS (SELECT FROM snapshot_rows)
    ORDER BY {keys}, p.dwh_batch_id DESC, p.dwh_row_number DESC NULLS LAST
),
held AS (   -- the current rows: unless a batch after the row, before this one, lost the key
    SELECT b.* FROM latest AS b
    WHERE NOT EXISTS (
        SELECT FROM tools.snapshot_vanished AS g
        WHERE g.client_schema = {c} AND g.table_name = {name}
          AND {recorded_key}
          AND g.batch_id > b.{version} AND g.batch_id < %(batch_id)s)
),
changes AS MATERIALIZED (   -- new keys, changed rows, and keys the snapshot no longer holds
    SELECT {", ".join(f"n.{_q(col)}" for col in names)}, n.{_q(DELIVERED)},
           CASE WHEN n.{_q(DELIVERED)} IS NULL THEN jsonb_build_array({cols("b")}) END
               AS {_q(VANISHED_KEY)}
    FROM (SELECT *, true AS {_q(DELIVERED)} FROM snapshot_rows) AS n
    FULL JOIN held AS b ON {same_key("b", "n")}
    WHERE b.{version} IS NULL OR n.{_q(DELIVERED)} IS NULL
       OR {values("b")} IS DISTINCT FROM {values("n")}
),
vanished AS (
    INSERT INTO tools.snapshot_vanished (client_schema, table_name, batch_id, key)
    SELECT {c}, {name}, %(batch_id)s, {_q(VANISHED_KEY)}
    FROM changes WHERE {_q(DELIVERED)} IS NULL
)
INSERT INTO {t} ({every})
SELECT {every} FROM changes WHERE {_q(DELIVERED)};

INSERT INTO tools.snapshot_delivery
    (client_schema, table_name, batch_id, delivered_rows, changed_rows, vanished_keys)
SELECT {c}, {name}, %(batch_id)s, count(*),
       (SELECT count(*) FROM {t} WHERE dwh_batch_id = %(batch_id)s),
       (SELECT count(*) FROM tools.snapshot_vanished WHERE {scope})
FROM snapshot_rows
HAVING count(*) > 0
"""


def table_columns(conn: psycopg.Connection, target: str) -> list[TableColumn]:
    """The columns of ``target`` (``schema.table``) and their types, in order: a snapshot
    compares all but the lineage columns, and matches recorded keys by their types."""
    schema, table = target.split(".", 1)
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory
           FROM pg_attribute AS a
           JOIN pg_type AS t ON t.oid = a.atttypid
           JOIN pg_class AS c ON c.oid = a.attrelid
           JOIN pg_namespace AS s ON s.oid = c.relnamespace
           WHERE s.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        (schema, table),
    ).fetchall()
    if not rows:
        raise ValueError(f"{target}: no such table (a snapshot delivery's silver table)")
    return [TableColumn(*row) for row in rows]


def step_text(
    sql_text: str,
    client: str,
    target: str,
    key: Sequence[str] | None,
    columns: Sequence[TableColumn] = (),
) -> str:
    """What a silver step runs: its file's statements, and for a snapshot delivery (a
    ``key``), its one ``INSERT INTO <target>`` made into the temporary ``snapshot_rows``
    (a table like the target's), then the statements of ``diff_sql``: one transaction."""
    if not key:
        return sql_text
    schema, table = target.split(".", 1)
    into = re.compile(
        rf'\bINSERT\s+INTO\s+"?{re.escape(schema)}"?\s*\.\s*"?{re.escape(table)}"?(?=[\s(])', re.I
    )
    found = len(into.findall(sql_text))
    if found != 1:
        raise ValueError(
            f"a snapshot delivery's step must insert into {target} in one statement; "
            f"its SQL does so {found} times"
        )
    staged = into.sub("INSERT INTO snapshot_rows", sql_text).rstrip().rstrip(";")
    like = (
        f"CREATE TEMP TABLE snapshot_rows (LIKE {_q(schema)}.{_q(table)} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    return f"{like};\n{SETTINGS};\n{staged};\n{diff_sql(client, target, key, columns)}"


def later_deliveries(
    conn: psycopg.Connection, client: str, target: str, batch_id: str, sql_text: str
) -> tuple[list[str], str | None]:
    """The batches after ``batch_id`` that delivered ``target`` (a snapshot's silver table),
    in order: their comparisons include this batch's rows, so they run again after it (see
    the module docstring). Cut before the first whose bronze rows of a table the step reads
    (``sql_text``) are gone, with the one line that says so (else ``None``)."""
    later = [
        batch
        for (batch,) in conn.execute(
            """SELECT batch_id FROM tools.snapshot_delivery
               WHERE client_schema = %s AND table_name = %s AND batch_id > %s ORDER BY batch_id""",
            (client, target, batch_id),
        )
    ]
    bronze = sorted(r for r in relations_read(sql_text, client) if r.startswith(f"bronze_{client}."))
    for position, batch in enumerate(later):
        for table in bronze:
            query = sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE dwh_batch_id = %s)").format(
                sql.Identifier(*table.split(".", 1))
            )
            if not one_row(conn.execute(query, (batch,)))[0]:
                return later[:position], (
                    f"{target}: {batch} delivered it after {batch_id}, but its rows in {table} are "
                    f"gone (retention): its changes and those of the batches after it were not "
                    f"compared again with {batch_id}'s new rows"
                )
    return later, None


def recompared_batches(
    conn: psycopg.Connection, client: str, layer: str, step: str, batch_id: str
) -> list[str]:
    """The batches after ``batch_id`` whose snapshot rows silver compared again (an earlier
    batch run again, ``later_deliveries``) since ``step`` of ``layer`` last ran for them:
    the step runs for them again, after ``batch_id``, in order."""
    return [
        batch
        for (batch,) in conn.execute(
            """SELECT DISTINCT d.batch_id
               FROM tools.snapshot_delivery AS d
               JOIN tools.sql_step_state AS s
                 ON s.client_schema = d.client_schema AND s.layer = %s AND s.step_name = %s
                AND s.batch_id = d.batch_id
               WHERE d.client_schema = %s AND d.batch_id > %s AND d.recorded_at > s.written_at
               ORDER BY d.batch_id""",
            (layer, step, client, batch_id),
        )
    ]
