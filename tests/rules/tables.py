"""Rule tests in the spirit of dbt's unit tests: given rows, a step, expected rows.

A table is written as text, a header line then one line per row, cells separated by `|`:

    sls_ord_num | sls_quantity | sls_price
    SO1         | 3            | 10          # a consistent line
    ' SO2 '     |              | -5          # quotes keep spaces; a blank cell is NULL

* a blank cell is NULL, ``''`` is the empty text, ``'  x '`` keeps its spaces;
* ``#`` starts a comment: why the row is there, for the reader;
* values are written as PostgreSQL prints them (``col::text``), and given values are
  cast by PostgreSQL into the column's type, so a test reads like the table it fills.

``given`` fills a table for a batch (lineage columns filled in when not written),
``run_step`` runs one SQL step of a client exactly as the DAG's task runs it (the task's
rendered SQL, the batch id bound, one transaction), and ``expect`` compares what a table
or query holds with the expected rows, every column accounted for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import psycopg
from psycopg import sql

log = logging.getLogger("test.rules")

BATCH = "BATCH000001"
# Columns that say when a row was written, not what it holds.
WRITTEN_AT = frozenset({"dwh_loaded_at", "dwh_updated_at", "dwh_created_at", "dwh_recorded_at"})

_QUOTED = re.compile(r"^'(.*)'$", re.DOTALL)


def parse(text: str) -> tuple[list[str], list[tuple[str | None, ...]]]:
    """The header and the rows of a table written as text (see the module docstring)."""
    lines = []
    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        if line:
            lines.append(line)
    if not lines:
        raise ValueError("a table needs at least a header line")
    header = [name.strip() for name in lines[0].split("|")]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = [_cell(cell) for cell in line.split("|")]
        if len(cells) != len(header):
            raise ValueError(
                f"table line {number} has {len(cells)} cells, the header has {len(header)}: {line}"
            )
        rows.append(tuple(cells))
    return header, rows


def _strip_comment(line: str) -> str:
    """The line up to a ``#`` that is not inside quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == "'":
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i]
    return line


def _cell(text: str) -> str | None:
    text = text.strip()
    if text == "":
        return None
    quoted = _QUOTED.match(text)
    return quoted.group(1) if quoted else text


def _split(qualified: str) -> sql.Identifier:
    schema, table = qualified.split(".", 1)
    return sql.Identifier(schema, table)


def columns_of(conn: psycopg.Connection, qualified: str) -> list[str]:
    schema, table = qualified.split(".", 1)
    return [
        name
        for (name,) in conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
            (schema, table),
        )
    ]


def given(conn: psycopg.Connection, table: str, text: str, *, batch: str = BATCH) -> None:
    """Insert the rows of ``text`` into ``table`` for ``batch``.

    Lineage columns the table has and the text does not write are filled as a load
    fills them: ``dwh_batch_id`` the batch, ``dwh_row_number`` the row's position (1, 2,
    ...), ``dwh_source_file`` a file name of the batch.
    """
    header, rows = parse(text)
    existing = set(columns_of(conn, table))
    unknown = [c for c in header if c not in existing]
    if unknown:
        raise ValueError(f"{table} has no column(s) {', '.join(unknown)}")
    extra: list[tuple[str, object]] = []
    if "dwh_batch_id" in existing and "dwh_batch_id" not in header:
        extra.append(("dwh_batch_id", batch))
    if "dwh_source_file" in existing and "dwh_source_file" not in header:
        extra.append(("dwh_source_file", f"{table.split('.', 1)[1]}_{batch}.csv"))
    number_rows = "dwh_row_number" in existing and "dwh_row_number" not in header
    names = header + [n for n, _ in extra] + (["dwh_row_number"] if number_rows else [])
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        _split(table),
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    for position, row in enumerate(rows, start=1):
        values = list(row) + [v for _, v in extra] + ([position] if number_rows else [])
        conn.execute(statement, values)


def expect(
    conn: psycopg.Connection,
    source: str,
    text: str,
    *,
    where: str | None = None,
    params: Iterable[object] = (),
    ignore: Iterable[str] = (),
) -> None:
    """Assert that ``source`` holds exactly the rows of ``text``, compared as text.

    ``source`` is a table (``schema.table``) or a query (``SELECT ...``). For a table,
    every column must be in the expected header or in ``ignore`` (the time a row was
    written is always ignored), so no column goes unchecked; ``where`` filters its rows.
    Rows are compared as a multiset: their order does not matter.
    """
    header, rows = parse(text)
    if source.lstrip().upper().startswith(("SELECT", "WITH")):
        query = sql.SQL("SELECT {} FROM ({}) AS q").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in header),
            sql.SQL(source),  # a query written by the test itself
        )
    else:
        unchecked = sorted(set(columns_of(conn, source)) - set(header) - set(ignore) - WRITTEN_AT)
        assert not unchecked, f"{source}: column(s) not checked by the test: {', '.join(unchecked)}"
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in header),
            _split(source),
        )
        if where:
            query += sql.SQL(" WHERE ") + sql.SQL(where)  # written by the test itself
    actual = [tuple(row) for row in conn.execute(query, tuple(params)).fetchall()]
    key = _sort_key
    if sorted(actual, key=key) != sorted(rows, key=key):
        raise AssertionError(_difference(source, header, rows, actual))


def _sort_key(row: tuple[str | None, ...]) -> tuple:
    return tuple((value is None, value or "") for value in row)


def _difference(source: str, header: list[str], expected: list[tuple], actual: list[tuple]) -> str:
    """Both tables side by side, with the rows only one of them has marked."""
    missing = _minus(expected, actual)
    unexpected = _minus(actual, expected)
    lines = [f"{source}: rows differ", "  " + " | ".join(header)]
    lines += ["- " + _show(row) + "   (expected, not found)" for row in missing]
    lines += ["+ " + _show(row) + "   (found, not expected)" for row in unexpected]
    return "\n".join(lines)


def _minus(left: list[tuple], right: list[tuple]) -> list[tuple]:
    remaining = list(right)
    out = []
    for row in left:
        if row in remaining:
            remaining.remove(row)
        else:
            out.append(row)
    return out


def _show(row: tuple) -> str:
    return " | ".join("NULL" if v is None else repr(v) if v != v.strip() or v == "" else v for v in row)


def run_step(conn: psycopg.Connection, dag, task_id: str, batch: str = BATCH) -> None:
    """Run one SQL task of a client's DAG (``silver.crm_cust_info``) for ``batch``, as the
    DAG runs it: the task's SQL rendered by the DAG's template environment, then the
    task's own ``execute`` (the statements in one transaction, the batch id bound, the
    attempt logged in ``tools.sql_step_log``)."""
    import copy
    from types import SimpleNamespace

    task = copy.copy(dag.get_task(task_id))
    task.sql = task.render_template(task.sql, {}, jinja_env=dag.get_template_env())
    task.parameters = {"batch_id": batch}
    task.execute({"ti": SimpleNamespace(try_number=1)})
    status = conn.execute(
        """SELECT status, error_message FROM tools.sql_step_log
           WHERE client_schema = %s AND layer = %s AND step_name = %s AND batch_id = %s
           ORDER BY id DESC LIMIT 1""",
        (task.client, task.layer, task.step, batch),
    ).fetchone()
    assert status == ("SUCCESS", None), status


def run_snapshot_step(
    conn: psycopg.Connection,
    target: str,
    key: list[str],
    sql_text: str,
    batch: str,
    bronze_files: dict[str, str] | None = None,
    bronze_key=None,
    client: str = "client1",
):
    """Run a snapshot step's rendered SQL (``sql_text``) for ``batch`` into ``target``
    (``silver_<client>.<table>``) as its operator does, but for the text given: what
    ``batch_step_text`` makes of it and the step, in one transaction. Returns how the
    delivery was compared (None: every key)."""
    from include.etl.warehouse.snapshot import batch_step_text
    from include.etl.warehouse.sqlstep import run_step as run_sql

    with conn.transaction():
        files = bronze_files or {}
        text, how = batch_step_text(conn, client, target, key, sql_text, batch, files, bronze_key)
        run_sql(
            conn,
            client=client,
            layer="silver",
            step=target.split(".", 1)[1],
            target=target,
            sql_text=text,
            batch_id=batch,
            log=log,
            parameters={"batch_id": batch},
            skip_unchanged=False,
        )
    return how
