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

**The same snapshot again.** A file delivered again as it was (a reference table that did
not change that day) would be cleaned and compared in full to add nothing. When the
table's latest earlier delivery was taken by the same step from the same bronze rows
(``same_snapshot`` says exactly when that is sure), the step does not clean or compare
it: it records the delivery as that batch's (the same rows delivered, none changed, none
vanished; ``tools.snapshot_delivery.same_as_batch`` names the batch). A step whose SQL
reads the clock (``current_date``) or calls a function that is not immutable is always
compared: the same rows can clean differently another day.

**The changed rows only.** A step whose cleaned row of a key depends on that key's
bronze rows alone may say how a bronze row's key is computed (``bronze_key`` in its
config). A day's snapshot then pairs its bronze rows with the latest earlier delivery's
by row number, takes the keys of the rows that differ, cleans the batch's rows of those
keys only and compares those keys only (``changed_only_text``): the other keys' rows are
the same bronze rows, cleaned by the same step, so silver already holds them. The
conditions are those of the same snapshot again, but for the files' content; the record
says how many keys were compared (``compared_keys``). A step that compares bronze dates
with today's date itself (``bronze_key.clock``, checked in its SQL by
``reads_clock_only_through``) compares the keys whose date lies between the base's day
and today too: the only rows that clean differently on another day.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import psycopg
from psycopg import sql

from include.etl.config import BronzeKey
from include.etl.warehouse.connection import one_row
from include.etl.warehouse.sqlstep import applied_migrations, relations_read, split_statements

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


def diff_sql(
    client: str,
    target: str,
    key: Sequence[str],
    columns: Sequence[TableColumn],
    digest: str | None = None,
    changed: ChangedOnly | None = None,
    identity: str | None = None,
) -> str:
    """The statements that add to ``target`` (``schema.table``, a silver table) what the
    batch's cleaned snapshot, in the temporary table ``snapshot_rows``, changes (see the
    module docstring), with ``%(batch_id)s`` bound. ``columns``: the table's columns, in
    order (``table_columns``); ``digest``: the step's (``step_digest``), recorded with the
    delivery with ``identity`` (``bronze_identity``); ``changed``: compare only the keys in
    the temporary table ``snapshot_keys`` (``changed_only_text``). Identifiers come from
    the validated config
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
    record = ", ".join(_literal(v) if v else "NULL" for v in (digest, identity))
    if changed is None:  # every key; a snapshot of no row (the file did not come) changes nothing
        which = "AND EXISTS (SELECT FROM snapshot_rows)"
    else:  # the changed keys; the others are the base's rows, which the current rows already are
        which = f"AND ({keys}) IN (SELECT {keys} FROM snapshot_keys)"
    held = f"""latest AS (   -- per key, its latest row before the batch
    SELECT DISTINCT ON ({keys}) {current}
    FROM {t} AS p
    WHERE p.dwh_batch_id < %(batch_id)s
      {which}
    ORDER BY {keys}, p.dwh_batch_id DESC, p.dwh_row_number DESC NULLS LAST
),
held AS (   -- the current rows: unless a batch after the row, before this one, lost the key
    SELECT b.* FROM latest AS b
    WHERE NOT EXISTS (
        SELECT FROM tools.snapshot_vanished AS g
        WHERE g.client_schema = {c} AND g.table_name = {name}
          AND {recorded_key}
          AND g.batch_id > b.{version} AND g.batch_id < %(batch_id)s)
)"""
    if changed is None:
        first = f"WITH {held},"
        source, guard = "held", ""
        delivered, compared_keys, rows = "count(*)", "NULL", "FROM snapshot_rows\nHAVING count(*) > 0"
    else:
        first = f"CREATE TEMP TABLE snapshot_held ON COMMIT DROP AS\nWITH {held}\nSELECT * FROM held;\n\nWITH"
        source = "snapshot_held"
        # the snapshot's rows: the base's, less the compared keys it held, plus the
        # compared keys the batch holds; none (every row cleaned away): nothing came
        delivered = (
            f"({int(changed.delivered_rows)} - (SELECT count(*) FROM snapshot_held)"
            " + (SELECT count(*) FROM snapshot_rows))"
        )
        guard = f"\n      AND {delivered} > 0"
        compared_keys, rows = "(SELECT count(*) FROM snapshot_keys)", f"WHERE {delivered} > 0"
    return f"""
-- ---- snapshot delivery of {target}: add what changed (include/etl/warehouse/snapshot.py)
DELETE FROM tools.snapshot_vanished WHERE {scope};

DELETE FROM tools.snapshot_delivery WHERE {scope};

{first}
changes AS MATERIALIZED (   -- new keys, changed rows, and keys the snapshot no longer holds
    SELECT {", ".join(f"n.{_q(col)}" for col in names)}, n.{_q(DELIVERED)},
           CASE WHEN n.{_q(DELIVERED)} IS NULL THEN jsonb_build_array({cols("b")}) END
               AS {_q(VANISHED_KEY)}
    FROM (SELECT *, true AS {_q(DELIVERED)} FROM snapshot_rows) AS n
    FULL JOIN {source} AS b ON {same_key("b", "n")}
    WHERE (b.{version} IS NULL OR n.{_q(DELIVERED)} IS NULL
           OR {values("b")} IS DISTINCT FROM {values("n")}){guard}
),
vanished AS (
    INSERT INTO tools.snapshot_vanished (client_schema, table_name, batch_id, key)
    SELECT {c}, {name}, %(batch_id)s, {_q(VANISHED_KEY)}
    FROM changes WHERE {_q(DELIVERED)} IS NULL
)
INSERT INTO {t} ({every})
SELECT {every} FROM changes WHERE {_q(DELIVERED)};

INSERT INTO tools.snapshot_delivery
    (client_schema, table_name, batch_id, delivered_rows, changed_rows, vanished_keys, step_digest,
     bronze_tables, compared_keys)
SELECT {c}, {name}, %(batch_id)s, {delivered},
       (SELECT count(*) FROM {t} WHERE dwh_batch_id = %(batch_id)s),
       (SELECT count(*) FROM tools.snapshot_vanished WHERE {scope}),
       {record}, {compared_keys}
{rows}
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


def _staged(sql_text: str, target: str) -> tuple[str, str]:
    """A snapshot step's statements with their one ``INSERT INTO <target>`` made into the
    temporary ``snapshot_rows``, and the statement creating that table (like the target)."""
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
    return like, staged


def step_text(
    sql_text: str,
    client: str,
    target: str,
    key: Sequence[str] | None,
    columns: Sequence[TableColumn] = (),
    digest: str | None = None,
    identity: str | None = None,
) -> str:
    """What a silver step runs: its file's statements, and for a snapshot delivery (a
    ``key``), its one ``INSERT INTO <target>`` made into the temporary ``snapshot_rows``
    (a table like the target's), then the statements of ``diff_sql``: one transaction."""
    if not key:
        return sql_text
    like, staged = _staged(sql_text, target)
    diff = diff_sql(client, target, key, columns, digest, identity=identity)
    return f"{like};\n{SETTINGS};\n{staged};\n{diff}"


# ------------------------------------------------ the same snapshot again, or its changes only

# A step whose SQL reads the clock or chance can clean the same bronze rows into other
# rows on another day: its snapshots are always compared in full.
TIME_OR_CHANCE = re.compile(
    r"\b(?:current_date|current_time|current_timestamp|localtime|localtimestamp)\b"
    r"|\b(?:now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|age|random"
    r"|gen_random_uuid|uuidv4|uuidv7|nextval|txid_current|pg_current_xact_id)\s*\("
    r"|'\s*(?:now|today|tomorrow|yesterday)\b"  # 'today', ' now '::date, 'today 10:00'
    r"|\$[A-Za-z_0-9]*\$\s*(?:now|today|tomorrow|yesterday)\b",  # $$today$$
    re.IGNORECASE,
)
# A comparison of a bronze date column with today's date itself, either way round, the
# column named through the bronze table's alias, on its own between
# keywords, commas or brackets (``WHEN b.bdate > current_date THEN``; not
# ``b.bdate > current_date - 1``, ``x - b.bdate > current_date``, ``b.bdate::text > ...`` or
# ``bdate > current_date``, which could be a column of any subquery). Matched in a
# statement whose comments are stripped and white space is one space.
_OPERATOR = r" ?(?:<=|>=|<>|!=|<|>|=) ?"
_BEFORE = r"(?:^|[(,] ?| (?:WHEN|AND|OR|WHERE|NOT|ON|HAVING|THEN|ELSE) )"
_AFTER = r"(?= ?(?:$|[),;]|(?:THEN|AND|OR|WHEN|ELSE|END)\b))"
_NOT_ALIASES = {
    "where", "join", "on", "left", "right", "inner", "outer", "full", "cross", "natural", "group",
    "order", "limit", "offset", "union", "except", "intersect", "window", "using", "tablesample",
    "having", "fetch", "for", "lateral",
}  # fmt: skip


def _bronze_aliases(plain: str, bronze: str) -> set[str]:
    """The aliases a statement reads the bronze table ``bronze`` (``schema.table``) by
    (``FROM bronze_c.t AS b``, ``FROM bronze_c.t b``), but one that also names a subquery
    or a CTE (``) AS b``, ``b AS (``): its columns could be anything."""
    schema, table = bronze.split(".", 1)
    name = rf'"?{re.escape(schema)}"? ?\. ?"?{re.escape(table)}"?'
    found = re.findall(rf'{name} (?:AS )?"?([A-Za-z_][A-Za-z0-9_]*)"?', plain, re.IGNORECASE)
    aliases = {a.lower() for a in found if a.lower() not in _NOT_ALIASES}
    return {
        a
        for a in aliases
        if not re.search(rf'\) ?(?:AS )?"?{a}"?(?![\w$])|(?<![\w$."])"?{a}"? AS \(', plain, re.IGNORECASE)
    }


def _clock_comparisons(columns: Sequence[str], aliases: Iterable[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(c) for c in columns)
    through = "|".join(re.escape(a) for a in sorted(aliases)) or "(?!)"  # none: nothing matches
    column = rf'"?(?:{through})"? ?\. ?"?(?:{names})"?'
    return re.compile(
        rf"{_BEFORE}(?:{column}{_OPERATOR}current_date|current_date{_OPERATOR}{column}){_AFTER}",
        re.IGNORECASE,
    )


def reads_clock_only_through(sql_text: str, columns: Sequence[str], bronze: str) -> bool:
    """Does the step read the clock only to compare ``columns`` (dates of the bronze table
    ``bronze``, a ``BronzeKey.clock``) with ``current_date`` itself, each use a plain
    comparison of the column named through the bronze table? Then a row cleans
    differently on another day only when its date lies between the two days
    (``changed_only_text`` compares those keys again). Any other clock, chance, or use of
    ``current_date`` (an offset, a function of it, a column of a subquery) answers no."""
    if not columns:
        return False
    plain = " ".join(_plain(statement) for statement in split_statements(sql_text))
    rest = _clock_comparisons(columns, _bronze_aliases(plain, bronze)).sub(" ", plain)
    return not TIME_OR_CHANCE.search(rest)


def clock_declaration_holds(
    sql_text: str, client: str, clock: Sequence[str], bronze_files: Mapping[str, str]
) -> bool:
    """Does a step that declares ``clock`` (``BronzeKey.clock``) read one bronze table of
    the client's files, and the clock only as it says (``reads_clock_only_through``)?"""
    reads = relations_read(sql_text, client) & bronze_files.keys()
    return len(reads) == 1 and reads_clock_only_through(sql_text, clock, next(iter(reads)))


_CALL = re.compile(r'"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\(')
_PLAIN_CALL = re.compile(r'(?<![\w$."])([A-Za-z_][A-Za-z0-9_]*)\s*\(')
# A bronze row's own columns say where it came from, not what it holds (but its number
# is compared: a key's latest row can be the later one in the file).
BRONZE_LINEAGE = ("dwh_batch_id", "dwh_source_file", "dwh_loaded_at")
# Comparing two batches' bronze rows hashes one of them: in memory, not in batches on disk.
COMPARE_SETTINGS = "SET LOCAL work_mem = '256MB'"


class SameSnapshot(NamedTuple):
    """An earlier batch whose snapshot a batch delivers again as it was (``same_snapshot``)."""

    base: str  # the earlier batch
    delivered_rows: int  # what its snapshot delivered, after the step's cleaning


class Base(NamedTuple):
    """The table's latest delivery before a batch, comparable with it (``_comparable_base``)."""

    batch: str
    delivered_rows: int  # what its snapshot delivered
    reads: set[str]  # the bronze tables the step reads
    reads_clock: bool  # it compares bronze dates with today's (``reads_clock_only_through``)
    compared_on: datetime.date  # the day the base was compared (its step's current_date)


class ChangedOnly(NamedTuple):
    """A batch whose snapshot is compared by the keys of its changed rows only
    (``batch_step_text``): against the base's rows of ``bronze``."""

    base: str  # the table's latest delivery before the batch
    delivered_rows: int  # what the base's snapshot delivered
    bronze: str  # schema.table: the one bronze table the step reads
    bronze_key: BronzeKey  # how a bronze row's key is computed
    base_compared_on: datetime.date  # the day the base was compared


def step_digest(
    conn: psycopg.Connection, client: str, sql_text: str, key: Sequence[str], columns: Sequence[TableColumn]
) -> str:
    """A hash of what a snapshot step is: its SQL, its key, its table's columns and the
    migrations applied (they define the functions it calls). Recorded with each delivery
    the step compares."""
    state = {
        "sql": sql_text,
        "key": list(key),
        "columns": [list(column) for column in columns],
        "migrations": applied_migrations(conn, client),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


def _plain(statement: str) -> str:
    """A statement without comments, its white space one space."""
    import sqlparse

    return " ".join(sqlparse.format(statement, strip_comments=True).split())


def _comparable_base(
    conn: psycopg.Connection,
    client: str,
    target: str,
    batch_id: str,
    sql_text: str,
    digest: str,
    bronze_files: Mapping[str, str],
    clock: Sequence[str] = (),
) -> Base | None:
    """The table's latest delivery before the batch (the base), what it delivered and the
    bronze tables the step reads, when the step is one whose result follows from its
    batch's bronze rows alone (and, with ``clock``, today's date) and took the base's
    snapshot as it is now; else None.

    * The step (``sql_text``, rendered) deletes the batch's rows (``DELETE FROM <target>
      WHERE dwh_batch_id = %(batch_id)s``) and inserts its cleaned rows in one ``INSERT
      INTO <target>``, and nothing else; that insert reads bronze tables of the client's
      files (``bronze_files``: ``schema.table`` to the logical file), not the target or
      any other table, calls no function that is not immutable and does not read the
      clock or chance (``TIME_OR_CHANCE``), but to compare the ``clock`` columns with
      today's date (``clock_declaration_holds``: the base's ``reads_clock`` is then true).
    * The base was taken by the same step (``step_digest``: the same SQL, key, columns
      and migrations). The base's comparison left silver's current rows as the base's
      snapshot, and no batch between them delivered the table."""
    reads_clock = bool(TIME_OR_CHANCE.search(sql_text))
    if reads_clock and not clock_declaration_holds(sql_text, client, clock, bronze_files):
        return None
    schema, table = target.split(".", 1)
    name = rf'"?{re.escape(schema)}"?\s*\.\s*"?{re.escape(table)}"?'
    delete = re.compile(rf'DELETE FROM {name} WHERE "?dwh_batch_id"? = %\(batch_id\)s', re.IGNORECASE)
    into = re.compile(rf"^INSERT INTO {name}(?=[\s(])", re.IGNORECASE)
    statements = [_plain(statement) for statement in split_statements(sql_text)]
    inserts = [into.sub("INSERT INTO", s) for s in statements if into.match(s)]
    if len(inserts) != 1 or any(not delete.fullmatch(s) and not into.match(s) for s in statements):
        return None
    calls = {(s.lower(), f.lower()) for s, f in _CALL.findall(inserts[0])}
    reads = relations_read(inserts[0], client) - {f"{s}.{f}" for s, f in calls}  # tables, not functions
    if not reads or not reads <= bronze_files.keys():
        return None
    # Every function it calls is immutable: one named with its schema must exist and be,
    # one named alone is looked up where PostgreSQL finds it (pg_catalog, public).
    (found, mutable) = one_row(
        conn.execute(
            """SELECT count(DISTINCT (n.nspname, p.proname)) FILTER (WHERE c.nspname IS NOT NULL),
                      count(*) FILTER (WHERE p.provolatile <> 'i')
               FROM pg_proc AS p
               JOIN pg_namespace AS n ON n.oid = p.pronamespace
               LEFT JOIN unnest(%s::text[], %s::text[]) AS c(nspname, proname)
                 ON n.nspname = c.nspname AND p.proname = c.proname
               WHERE c.nspname IS NOT NULL
                  OR (n.nspname IN ('pg_catalog', 'public') AND p.proname = ANY(%s))""",
            (
                [s for s, _ in calls],
                [f for _, f in calls],
                sorted({name.lower() for name in _PLAIN_CALL.findall(inserts[0])}),
            ),
        )
    )
    if found != len(calls) or mutable:
        return None
    row = conn.execute(
        """SELECT batch_id, delivered_rows, step_digest, bronze_tables,
                  coalesce(compared_on, recorded_at::date)
           FROM tools.snapshot_delivery
           WHERE client_schema = %s AND table_name = %s AND batch_id < %s
           ORDER BY batch_id DESC LIMIT 1""",
        (client, target, batch_id),
    ).fetchone()
    if row is None or row[2] != digest:
        return None
    # the base's bronze rows are those it was compared from (not reloaded since)
    if row[3] != bronze_identity(conn, reads, row[0]):
        return None
    return Base(row[0], int(row[1]), reads, reads_clock, row[4])


def same_snapshot(
    conn: psycopg.Connection,
    client: str,
    target: str,
    batch_id: str,
    sql_text: str,
    digest: str,
    bronze_files: Mapping[str, str],
) -> SameSnapshot | None:
    """The earlier batch whose snapshot ``batch_id`` delivers again, when cleaning and
    comparing it is sure to add no row and find no key vanished; else None.

    Sure when the step and the base are comparable (``_comparable_base``), and each file
    the step reads came with the same content in both batches (its sha256) and its bronze
    rows are the same: row for row by their number, every column but ``BRONZE_LINEAGE``.
    (The same file loaded under another config differs here, as does a base whose bronze
    rows retention deleted.) Then the step would clean the batch into the base's
    snapshot, which silver's current rows already are: nothing to add, nothing vanished.
    The rows are read only when the files' hashes say they are the same (both batches'
    rows once: about 0.5 s for 342k customers, docs/benchmarks.md)."""
    found = _comparable_base(conn, client, target, batch_id, sql_text, digest, bronze_files)
    return None if found is None else _repeated(conn, client, batch_id, found, bronze_files)


def _repeated(
    conn: psycopg.Connection,
    client: str,
    batch_id: str,
    found: Base,
    bronze_files: Mapping[str, str],
) -> SameSnapshot | None:
    """``same_snapshot`` once the base is found: the files' hashes, then the rows (never
    for a step that reads the clock: the same rows clean differently another day)."""
    if found.reads_clock:
        return None
    base, delivered, reads = found.batch, found.delivered_rows, found.reads
    files = sorted({bronze_files[r] for r in reads})
    (same_files,) = one_row(
        conn.execute(
            """SELECT count(*) FROM tools.file_audit_log AS n
               JOIN tools.file_audit_log AS b
                 ON b.client_schema = n.client_schema AND b.logical_source_file = n.logical_source_file
               WHERE n.client_schema = %s AND n.batch_id = %s AND b.batch_id = %s
                 AND n.logical_source_file = ANY(%s) AND n.file_sha256 = b.file_sha256""",
            (client, batch_id, base, files),
        )
    )
    if same_files != len(files):
        return None
    if not all(_same_bronze_rows(conn, bronze, batch_id, base) for bronze in sorted(reads)):
        return None
    return SameSnapshot(base, delivered)


def bronze_identity(conn: psycopg.Connection, bronze_tables: Iterable[str], batch_id: str) -> str:
    """Which table holds the batch's rows of each bronze table (a load creates the batch's
    table anew, so a reloaded batch has another): recorded with each delivery, and a base
    whose bronze was reloaded since is compared in full."""
    parts = []
    for bronze in sorted(bronze_tables):
        query = sql.SQL("SELECT tableoid::oid FROM {} WHERE dwh_batch_id = %s LIMIT 1").format(
            sql.Identifier(*bronze.split(".", 1))
        )
        row = conn.execute(query, (batch_id,)).fetchone()
        parts.append(f"{bronze}:{row[0] if row else ''}")
    return ",".join(parts)


def _data_columns(columns: Sequence[TableColumn]) -> list[TableColumn]:
    """A bronze table's columns that hold what a row says (not its lineage, not its number)."""
    return [c for c in columns if c.name not in (*BRONZE_LINEAGE, "dwh_row_number")]


def _value(alias: str, column: TableColumn) -> str:
    """A column of a row, as it is compared: a type without equality (json, xml,
    geometric) as its text."""
    cast = column.type in ("json", "xml") or column.category == "G"
    return f"{alias}.{_q(column.name)}" + ("::text" if cast else "")


def _pairs_that_differ(bronze: str, columns: Sequence[TableColumn], base: str) -> str:
    """FROM and WHERE of the rows of the batch (``n``) and of the base (``b``) in
    ``bronze``, paired by their number, that are not the same (a row only one holds
    too)."""
    t = ".".join(_q(part) for part in bronze.split(".", 1))
    n = ", ".join(_value("n", c) for c in columns)
    b = ", ".join(_value("b", c) for c in columns)
    return f"""(SELECT * FROM {t} WHERE dwh_batch_id = %(batch_id)s) AS n
    FULL JOIN (SELECT * FROM {t} WHERE dwh_batch_id = {_literal(base)}) AS b
      ON b.dwh_row_number = n.dwh_row_number
    WHERE n.dwh_row_number IS NULL OR b.dwh_row_number IS NULL
       OR ROW({n}) IS DISTINCT FROM ROW({b})"""


def _same_bronze_rows(conn: psycopg.Connection, bronze: str, batch_id: str, base: str) -> bool:
    """Do the two batches hold the same rows in ``bronze``, row for row by their number?"""
    pairs = _pairs_that_differ(bronze, _data_columns(table_columns(conn, bronze)), base)
    return bool(one_row(conn.execute(f"SELECT NOT EXISTS (SELECT FROM {pairs})", {"batch_id": batch_id}))[0])


def same_snapshot_sql(client: str, target: str, digest: str, same: SameSnapshot, identity: str) -> str:
    """What the step runs for a batch that delivers ``same.base``'s snapshot again: what
    an earlier run of it wrote is deleted, and its delivery is recorded as the base's,
    with nothing changed and nothing vanished."""
    schema, table = target.split(".", 1)
    c, name = _literal(client), _literal(target)
    scope = f"client_schema = {c} AND table_name = {name} AND batch_id = %(batch_id)s"
    return f"""
-- ---- snapshot delivery of {target}: {same.base}'s again, not compared (include/etl/warehouse/snapshot.py)
DELETE FROM {_q(schema)}.{_q(table)} WHERE dwh_batch_id = %(batch_id)s;

DELETE FROM tools.snapshot_vanished WHERE {scope};

DELETE FROM tools.snapshot_delivery WHERE {scope};

INSERT INTO tools.snapshot_delivery
    (client_schema, table_name, batch_id, delivered_rows, changed_rows, vanished_keys, step_digest,
     bronze_tables, same_as_batch, compared_keys)
VALUES ({c}, {name}, %(batch_id)s, {int(same.delivered_rows)}, 0, 0,
        {_literal(digest)}, {_literal(identity)}, {_literal(same.base)}, 0)
"""


def _bronze_key_sql(
    alias: str,
    bronze_key: BronzeKey,
    silver_schema: str,
    key: Sequence[str],
    by_name: Mapping[str, TableColumn],
) -> list[str]:
    """The key of a bronze row (``alias``) as ``bronze_key`` computes it, one expression
    per key column, each of the key column's type."""
    if bronze_key.function is None:
        return [
            f"{alias}.{_q(col)}::{by_name[k].type}" for col, k in zip(bronze_key.columns, key, strict=True)
        ]
    args = ", ".join(f"{alias}.{_q(col)}" for col in bronze_key.columns)
    return [f"{_q(silver_schema)}.{_q(bronze_key.function)}({args})::{by_name[key[0]].type}"]


def _dated_keys(changed: ChangedOnly, r_key: Sequence[str], key: Sequence[str]) -> str:
    """The ``UNION`` of ``snapshot_keys`` that adds, for a step comparing bronze dates with
    today's (``BronzeKey.clock``), the keys of the batch's bronze rows (``r``) dated between
    the day the base was compared (``compared_on``) and today, a day either side (a
    timestamp's date, a session in another time zone); '' for another step."""
    if not changed.bronze_key.clock:
        return ""
    t = ".".join(_q(part) for part in changed.bronze.split(".", 1))
    base_day = f"DATE {_literal(changed.base_compared_on.isoformat())}"
    within = " OR ".join(
        f"r.{_q(name)}::date BETWEEN least({base_day}, current_date) - 1 "
        f"AND greatest({base_day}, current_date) + 1"
        for name in changed.bronze_key.clock
    )
    return f"""
UNION   -- the rows whose date lies between the base's day and today clean differently
SELECT {", ".join(f"{e} AS {_q(k)}" for e, k in zip(r_key, key, strict=True))}
FROM {t} AS r
WHERE r.dwh_batch_id = %(batch_id)s
  AND ({within})
  AND {" AND ".join(f"({e}) IS NOT NULL" for e in r_key)}"""


def changed_only_text(
    sql_text: str,
    client: str,
    target: str,
    key: Sequence[str],
    columns: Sequence[TableColumn],
    digest: str,
    changed: ChangedOnly,
    bronze_columns: Sequence[TableColumn],
    identity: str,
) -> str | None:
    """What the step runs to compare only the keys whose bronze rows changed since the
    base (``ChangedOnly``; the step declared its key's ``bronze_key``):

    1. the keys of the rows that differ from the base's, row for row by their number
       (either side's row: a changed row may move to another key), in ``snapshot_keys``;
    2. the batch's bronze rows of those keys, in ``snapshot_bronze``, which the step's own
       statements read in place of the bronze table (so a key's rows are cleaned and
       de-duplicated together, as in full);
    3. a cleaned row whose key is not among those keys fails the step (the declared
       ``bronze_key`` does not compute the key the step does);
    4. ``diff_sql`` compares those keys only: the other keys' rows are the base's, which
       silver's current rows already are. The delivery's rows are the base's, less the
       compared keys the base held, plus the compared keys the batch holds.

    A step that compares bronze dates with today's (``BronzeKey.clock``) cleans a row
    differently only when its date lies between the day the base was compared and today:
    the keys of the batch's rows dated so (a day either side, for the time zone) are
    compared too. By induction each delivery's current rows are its rows cleaned on the
    day it was compared, as comparing every key leaves them."""
    by_name = {column.name: column for column in columns}
    silver_schema = target.split(".", 1)[0]
    names = ", ".join(_q(k) for k in key)
    n_key = _bronze_key_sql("n", changed.bronze_key, silver_schema, key, by_name)
    b_key = _bronze_key_sql("b", changed.bronze_key, silver_schema, key, by_name)
    both = ", ".join(
        [f"{e} AS n{i}" for i, e in enumerate(n_key)] + [f"{e} AS b{i}" for i, e in enumerate(b_key)]
    )
    r_key = _bronze_key_sql("r", changed.bronze_key, silver_schema, key, by_name)
    pairs = _pairs_that_differ(changed.bronze, _data_columns(bronze_columns), changed.base)
    schema, table = changed.bronze.split(".", 1)
    dated = _dated_keys(changed, r_key, key)
    bronze = re.compile(
        rf'(?<![\w$"])"?{re.escape(schema)}"?\s*\.\s*"?{re.escape(table)}"?(?![\w$"])', re.IGNORECASE
    )
    substituted = bronze.sub("pg_temp.snapshot_bronze", sql_text)
    if changed.bronze in relations_read(substituted, client):
        return None  # a spelling of the table the substitution missed: compared in full
    like, cleaning = _staged(substituted, target)
    t = ".".join(_q(part) for part in changed.bronze.split(".", 1))
    found = " AND ".join(f"k.{_q(k)} = s.{_q(k)}" for k in key)
    same_key = " AND ".join(f"({e}) = s.{_q(k)}" for e, k in zip(r_key, key, strict=True))
    message = _literal(
        f"{target}: a cleaned row's key is not the one bronze_key computes from its bronze row: "
        "the step's key and its bronze_key disagree"
    )
    return f"""{like};
{SETTINGS};
-- ---- snapshot delivery of {target}: the keys of the rows changed since {changed.base}
CREATE TEMP TABLE snapshot_keys ON COMMIT DROP AS
SELECT DISTINCT {", ".join(f"v.{_q(k)}" for k in key)}
FROM (
    SELECT {both}
    FROM {pairs}
) AS d
CROSS JOIN LATERAL (VALUES ({", ".join(f"d.n{i}" for i in range(len(key)))}),
                           ({", ".join(f"d.b{i}" for i in range(len(key)))})) AS v({names})
WHERE {" AND ".join(f"v.{_q(k)} IS NOT NULL" for k in key)}{dated};

ANALYZE snapshot_keys;   -- a temporary table has no statistics until analyzed

CREATE TEMP TABLE snapshot_bronze (LIKE {t}) ON COMMIT DROP;

INSERT INTO snapshot_bronze
SELECT r.* FROM {t} AS r
WHERE r.dwh_batch_id = %(batch_id)s
  AND ({", ".join(r_key)}) IN (SELECT {names} FROM snapshot_keys);

{cleaning};

-- counted, not EXISTS: a search for a first row would try each row against each key
DO $check$ BEGIN
    IF (SELECT count(*) FROM snapshot_rows AS s
        WHERE NOT EXISTS (SELECT FROM snapshot_keys AS k WHERE {found})) > 0
       OR (SELECT count(*) FROM snapshot_rows AS s JOIN snapshot_bronze AS r USING (dwh_row_number)
           WHERE NOT ({same_key})) > 0
    THEN RAISE EXCEPTION {message};
    END IF;
END $check$;
{diff_sql(client, target, key, columns, digest, changed, identity)}"""


def batch_step_text(
    conn: psycopg.Connection,
    client: str,
    target: str,
    key: Sequence[str],
    sql_text: str,
    batch_id: str,
    bronze_files: Mapping[str, str],
    bronze_key: BronzeKey | None = None,
) -> tuple[str, SameSnapshot | ChangedOnly | None]:
    """What a snapshot step runs for ``batch_id``, and how it compares:

    * the batch delivers an earlier batch's snapshot again (``same_snapshot``): only the
      record of that (``same_snapshot_sql``), a ``SameSnapshot``;
    * else, for a step that declared its ``bronze_key``, comparable with the base
      (``_comparable_base``), reading one bronze table, whose batch and base both hold
      rows in it: the keys of the changed rows only (``changed_only_text``), a
      ``ChangedOnly``;
    * else the step and its comparison in full (``step_text``), None."""
    columns = table_columns(conn, target)
    digest = step_digest(conn, client, sql_text, key, columns)
    identity = bronze_identity(conn, relations_read(sql_text, client) & bronze_files.keys(), batch_id)
    conn.execute(COMPARE_SETTINGS)  # for the checks below, in the step's transaction
    clock = bronze_key.clock if bronze_key is not None else ()
    found = _comparable_base(conn, client, target, batch_id, sql_text, digest, bronze_files, clock)
    same = None if found is None else _repeated(conn, client, batch_id, found, bronze_files)
    if same is not None:
        return same_snapshot_sql(client, target, digest, same, identity), same
    if bronze_key is not None and found is not None and len(found.reads) == 1:
        base, delivered, (bronze,) = found.batch, found.delivered_rows, found.reads
        query = sql.SQL(
            "SELECT EXISTS (SELECT FROM {t} WHERE dwh_batch_id = %s), "
            "EXISTS (SELECT FROM {t} WHERE dwh_batch_id = %s)"
        ).format(t=sql.Identifier(*bronze.split(".", 1)))
        if all(one_row(conn.execute(query, (batch_id, base)))):  # a file not delivered, or retention
            changed = ChangedOnly(base, delivered, bronze, bronze_key, found.compared_on)
            text = changed_only_text(
                sql_text, client, target, key, columns, digest, changed, table_columns(conn, bronze), identity
            )
            if text is not None:
                return text, changed
    return step_text(sql_text, client, target, key, columns, digest, identity), None


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
