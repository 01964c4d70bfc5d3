"""The bad-input corpus: one test per kind of broken delivery.

Every file is written by the test into a fresh landing root, for a small client whose
config the tests write too (``badin``: a CSV, a workbook, JSON lines and a JSON array,
all optional so each test delivers just the file it is about). Each test runs the batch
the way the client DAG's tasks do (``include.etl.orchestration.tasks``: open, convert, validate columns,
validate rows, load bronze, close) against the real warehouse, then asserts the exact
outcome: which rows are in bronze and which in ``tools.rejected_rows`` (row number,
column, reason), where the file is (raw incoming / failed / archive), which log row was
written, and the one-line message the operator reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import psycopg
import pytest
import yaml

from include.etl.config import ClientConfig, load_client
from include.etl.ingest.landing import RAW_STATES, Landing
from include.etl.orchestration import tasks
from tests.conftest import complete, reset_client

CLIENT = "badin"
CONFIG = {
    "client": CLIENT,
    "display_name": "Bad input corpus",
    "owner": "tests",
    "schedule": None,
    "sources": [
        {
            "name": "crm",
            "files": [
                {
                    "name": "people",
                    "pattern": r"people(_\d{8})?\.csv",
                    "type": "csv",
                    "bronze_table": "people",
                    "required": False,
                    "key_columns": ["id"],
                    "reject_policy": {"max_ratio": 0.5},
                    "columns": [
                        {"source": "id", "type": "integer", "required": True},
                        {"source": "name"},
                        {"source": "amount", "type": "numeric"},
                        {"source": "born", "type": "date"},
                    ],
                }
            ],
        },
        {
            "name": "sheets",
            "files": [
                {
                    "name": "book",
                    "pattern": r"book(_\d{8})?\.xlsx",
                    "type": "xlsx",
                    "reader": {"sheet": "Data", "header_row": 3},
                    "bronze_table": "book",
                    "required": False,
                    "reject_policy": {"max_ratio": 0.5},
                    "columns": [
                        {"source": "Code", "target": "code", "required": True},
                        {"source": "Qty", "target": "qty", "type": "integer"},
                    ],
                }
            ],
        },
        {
            "name": "app",
            "files": [
                {
                    "name": "events",
                    "pattern": r"events(_\d{8})?\.jsonl",
                    "type": "json",
                    "reader": {"json_records": "lines"},
                    "bronze_table": "events",
                    "required": False,
                    "columns": [
                        {"source": "eventId", "target": "event_id", "required": True},
                        {"source": "n", "type": "integer"},
                    ],
                },
                {
                    "name": "accounts",
                    "pattern": r"accounts(_\d{8})?\.json",
                    "type": "json",
                    "reader": {"json_records": "array"},
                    "bronze_table": "accounts",
                    "required": False,
                    "columns": [{"source": "accountId", "target": "account_id", "required": True}],
                },
            ],
        },
    ],
}
HEADER = b"id,name,amount,born\n"
GOOD = HEADER + b"1,Ann,1.50,2024-01-01\n2,Bob,2,2024-02-29\n3,Cid,,\n"


# ---------------------------------------------------------------------------- harness
def write_config(folder: Path, **changes: object) -> ClientConfig:
    """The corpus client's config in ``folder``; ``changes`` edit the people file."""
    config = json.loads(json.dumps(CONFIG))
    config["sources"][0]["files"][0].update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{CLIENT}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_client(path, defaults={"schema_drift": "accept_additive"})


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conn: psycopg.Connection) -> Iterator[ClientConfig]:
    folder = tmp_path / "clients"
    monkeypatch.setenv("ETL_CLIENTS_DIR", str(folder))
    cfg = write_config(folder)
    reset_client(conn, cfg)
    yield cfg
    reset_client(conn, cfg)  # other tests count batches without naming the client


@dataclass
class Outcome:
    batch_id: str
    failed_task: str | None  # e.g. "people.convert"
    message: str | None  # the one line the failed task raised
    status: str  # the batch's status after close_batch
    opened: str  # open_batch's job log message


def deliver(landing: Landing, system: str, name: str, data: bytes) -> Path:
    folder = landing.raw(CLIENT, system, "incoming")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return complete(folder / name)


def run_batch(conn: psycopg.Connection, logical: str) -> Outcome:
    """Run one batch as the DAG's tasks would, for the logical file under test."""
    dag_run = f"corpus-{uuid.uuid4().hex[:8]}"

    def ctx(task: str) -> tasks.RunContext:
        return tasks.RunContext(dag_run_id=dag_run, task_id=task)

    batch = tasks.open_batch(CLIENT, "start", None, ctx("open_batch"))
    (opened,) = conn.execute(
        "SELECT message FROM tools.job_execution_log WHERE dag_run_id = %s AND task_id = 'open_batch'",
        (dag_run,),
    ).fetchone()
    failed, message = None, None
    if batch["files"].get(logical):
        try:
            parquet = tasks.convert(CLIENT, logical, batch, ctx(f"{logical}.convert"))
            failed = f"{logical}.validate_mapping"
            tasks.validate_mapping(CLIENT, logical, batch, parquet, ctx(failed))
            failed = f"{logical}.validate_rows"
            tasks.validate_rows(CLIENT, logical, batch, parquet, ctx(failed))
            failed = f"{logical}.load_bronze"
            tasks.load_bronze(CLIENT, logical, batch, parquet, ctx(failed))
            failed = None
        except tasks.FailFast as exc:
            failed, message = failed or f"{logical}.convert", str(exc)
        except tasks.Skip as exc:  # the file's group is skipped; the batch goes on
            message = str(exc)
    with contextlib.suppress(tasks.FailFast):  # a batch that did not succeed says so
        tasks.close_batch(CLIENT, batch, [failed] if failed else [], ctx("close_batch"))
    left = [p.name for p in Landing.from_env().root.rglob("*") if ".bronze.arrow" in p.name]
    assert left == [], "typed rows for the bronze load outlive their batch"
    (status,) = conn.execute(
        "SELECT status FROM tools.batch WHERE client_schema = %s AND batch_id = %s",
        (CLIENT, batch["batch_id"]),
    ).fetchone()
    return Outcome(batch["batch_id"], failed, message, status, opened)


def bronze(conn: psycopg.Connection, table: str, columns: str, batch_id: str = "BATCH000001") -> list[tuple]:
    return conn.execute(
        f"SELECT {columns} FROM bronze_{CLIENT}.{table} WHERE dwh_batch_id = %s ORDER BY dwh_row_number",
        (batch_id,),
    ).fetchall()


def rejected(conn: psycopg.Connection, batch_id: str = "BATCH000001") -> list[tuple]:
    return conn.execute(
        """SELECT logical_source_file, source_row_number, column_name, reason FROM tools.rejected_rows
           WHERE client_schema = %s AND batch_id = %s ORDER BY source_row_number""",
        (CLIENT, batch_id),
    ).fetchall()


def where(landing: Landing, system: str, name: str) -> list[str]:
    """The raw state folders holding ``name``."""
    return [s for s in RAW_STATES if (landing.raw(CLIENT, system, s) / name).exists()]


def audit_row(conn: psycopg.Connection, logical: str, batch_id: str = "BATCH000001") -> tuple:
    return conn.execute(
        """SELECT convert_status, mapping_validation_status, row_validation_status, load_status,
                  total_rows, rejected_rows, loaded_rows, error_message
           FROM tools.file_audit_log
           WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
        (CLIENT, batch_id, logical),
    ).fetchone()


def job(conn: psycopg.Connection, task: str, batch_id: str = "BATCH000001") -> tuple:
    return conn.execute(
        """SELECT status, message FROM tools.job_execution_log
           WHERE client_schema = %s AND batch_id = %s AND task_id = %s ORDER BY id DESC LIMIT 1""",
        (CLIENT, batch_id, task),
    ).fetchone()


def row_log(conn: psycopg.Connection, logical: str = "people") -> tuple:
    return conn.execute(
        """SELECT status, total_rows, rejected_rows, duplicate_keys, message FROM tools.row_validation_log
           WHERE client_schema = %s AND logical_source_file = %s ORDER BY id DESC LIMIT 1""",
        (CLIENT, logical),
    ).fetchone()


def assert_convert_failed(
    conn, landing, out: Outcome, system: str, name: str, logical: str, message: str
) -> None:
    """A file that cannot be read: refused at convert, raw file in failed, reason logged."""
    claimed = name.replace(".", "_BATCH000001.", 1)
    assert out.failed_task == f"{logical}.convert"
    assert out.message == message
    assert where(landing, system, claimed) == ["failed"]
    assert audit_row(conn, logical)[0] == "FAILED" and audit_row(conn, logical)[7] == message
    assert job(conn, f"{logical}.convert") == ("FAILED", message)
    assert conn.execute(
        """SELECT stage, error_message FROM tools.load_error_log
           WHERE client_schema = %s AND logical_source_file = %s""",
        (CLIENT, logical),
    ).fetchall() == [("convert", message)]
    assert out.status == "PARTIAL"  # an optional file failed alone
    assert rejected(conn) == []


# ---------------------------------------------------------------------------- structure
# A CSV that cannot be read as configured: refused at convert with one line naming what is
# wrong, the raw file in failed, the reason in the tools logs, no row loaded.
UNREADABLE_CSV = {
    "unbalanced-quotes": (
        HEADER + b'1,Ann,1,2024-01-01\n2,"Bob,2,2024-01-02\n3,Cid,3,2024-01-03\n',
        "unbalanced quotes: the quoted value opened on line 3 is never closed, so every row after it "
        "would be lost",
    ),
    "ragged-rows": (
        HEADER + b"1,Ann,1,2024-01-01\n2,Bob,2,2024-01-02,oops\n",
        "line 3 has 5 fields, the header has 4: '2,Bob,2,2024-01-02,oops'",
    ),
    "wrong-delimiter": (
        GOOD.replace(b",", b";"),
        "the header is one column ('id;name;amount;born') but 4 are configured: the file looks "
        "';'-delimited, the config says ','",
    ),
    "latin-1-where-utf-8-is-configured": (
        (HEADER.decode() + "1,Zoë,1,\n").encode("latin-1"),
        "cannot be read as CSV: not valid UTF-8 text in column 2; the config says utf-8: fix "
        "reader.encoding (latin-1?) or deliver UTF-8",
    ),
    "utf-16-without-a-bom": (
        (HEADER.decode() + "1,Zoë,1.5,\n").encode("utf-16-le"),
        "the file holds NUL bytes: UTF-16 without a byte order mark? Deliver it with a BOM, or set "
        "reader.encoding (utf-16-le or utf-16-be)",
    ),
    "zero-byte-file": (b"", "the file is empty (no header row)"),
}


@pytest.mark.parametrize(("data", "reason"), UNREADABLE_CSV.values(), ids=UNREADABLE_CSV.keys())
def test_an_unreadable_csv_fails_alone_with_its_reason(cfg, conn, landing, data: bytes, reason: str) -> None:
    deliver(landing, "crm", "people.csv", data)
    out = run_batch(conn, "people")
    message = f"people_BATCH000001.csv: {reason}"
    assert_convert_failed(conn, landing, out, "crm", "people.csv", "people", message)
    assert bronze(conn, "people", "id") == []
    # The refused file is hashed too (the audit row has its sha256).
    assert conn.execute(
        """SELECT file_sha256 FROM tools.file_audit_log
           WHERE client_schema = %s AND batch_id = 'BATCH000001' AND logical_source_file = 'people'""",
        (CLIENT,),
    ).fetchone() == (hashlib.sha256(data).hexdigest(),)


def test_utf16_with_a_bom_is_decoded(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", (HEADER.decode() + "1,Zoë,1.5,2024-01-01\n").encode("utf-16"))
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert bronze(conn, "people", "id, name, amount::text") == [(1, "Zoë", "1.5")]
    assert where(landing, "crm", "people_BATCH000001.csv") == ["archive"]


def test_utf8_with_a_bom(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", b"\xef\xbb\xbf" + GOOD)
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert bronze(conn, "people", "id, name") == [(1, "Ann"), (2, "Bob"), (3, "Cid")]


def test_header_only(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", HEADER)
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert row_log(conn) == (
        "WARNING",
        0,
        0,
        0,
        "0 of 0 rows rejected, 0 duplicate key(s); the file has a header but no data rows",
    )
    assert audit_row(conn, "people")[:7] == ("SUCCESS", "SUCCESS", "WARNING", "SUCCESS", 0, 0, 0)
    assert where(landing, "crm", "people_BATCH000001.csv") == ["archive"]


# ---------------------------------------------------------------------------- header names
def mapping_log(conn) -> tuple:
    return conn.execute(
        """SELECT status, missing_columns, extra_columns, message FROM tools.mapping_validation_log
           WHERE client_schema = %s ORDER BY id DESC LIMIT 1""",
        (CLIENT,),
    ).fetchone()


def drift_log(conn) -> list[tuple]:
    return conn.execute(
        """SELECT schema_version, policy, added_columns, missing_columns, retyped_columns, action, message
           FROM tools.schema_drift_log WHERE client_schema = %s ORDER BY id""",
        (CLIENT,),
    ).fetchall()


def assert_mapping_failed(conn, landing, out: Outcome, message: str) -> None:
    assert out.failed_task == "people.validate_mapping"
    assert out.message == message
    assert out.status == "PARTIAL"
    assert (landing.data(CLIENT, "crm", "failed") / "people_BATCH000001.parquet").exists()
    assert where(landing, "crm", "people_BATCH000001.csv") == ["failed"]
    assert audit_row(conn, "people")[:2] == ("SUCCESS", "FAILED")
    assert job(conn, "people.validate_mapping") == ("FAILED", message)
    assert bronze(conn, "people", "id") == []


def test_missing_header(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", b"id,name,amount\n1,Ann,1\n")
    out = run_batch(conn, "people")
    message = "people_BATCH000001.parquet: column(s) missing from the file: born"
    assert_mapping_failed(conn, landing, out, message)
    assert mapping_log(conn) == ("FAILED", ["born"], [], message)
    assert drift_log(conn) == [(1, "accept_additive", [], ["born"], [], "FAILED", message)]


def test_extra_header_is_accepted_and_logged(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", b"id,name,amount,born,note\n1,Ann,1,,hello\n")
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    message = "added column(s) ignored: note (schema_drift: accept_additive)"
    assert mapping_log(conn) == ("SUCCESS", [], ["note"], message)
    assert drift_log(conn) == [(1, "accept_additive", ["note"], [], [], "ACCEPTED", message)]
    assert bronze(conn, "people", "id, name") == [(1, "Ann")]


def test_renamed_header(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", b"id,name,amount,birth_date\n1,Ann,1,\n")
    out = run_batch(conn, "people")
    message = (
        "people_BATCH000001.parquet: column(s) missing from the file: born (file has unmapped: birth_date)"
    )
    assert_mapping_failed(conn, landing, out, message)
    assert drift_log(conn) == [(1, "accept_additive", ["birth_date"], ["born"], [], "FAILED", message)]


@pytest.mark.parametrize(
    ("header", "logged"),
    [
        (b"ID,Name,amount,BORN\n", "'ID' as 'id', 'Name' as 'name', 'BORN' as 'born'"),
        (b" id ,name,amount  ,born\n", "' id ' as 'id', 'amount  ' as 'amount'"),
    ],
    ids=["re-cased", "padded"],
)
def test_recased_or_padded_header_names_are_matched_and_logged(cfg, conn, landing, header, logged) -> None:
    deliver(landing, "crm", "people.csv", header + b"1,Ann,1.5,2024-01-01\n")
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    message = f"header(s) matched ignoring case and spaces: {logged}"
    assert mapping_log(conn) == ("SUCCESS", [], [], message)
    assert job(conn, "people.validate_mapping") == ("SUCCESS", message)
    assert drift_log(conn) == []  # the same columns: not drift
    assert bronze(conn, "people", "id, name, amount::text, born::text") == [(1, "Ann", "1.5", "2024-01-01")]


# ---------------------------------------------------------------------------- values
def assert_rows_quarantined(conn, landing, out: Outcome, loaded: list[int], dead: list[tuple]) -> None:
    """Good rows in bronze, bad rows in tools.rejected_rows, the file archived."""
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert [r[0] for r in bronze(conn, "people", "dwh_row_number")] == loaded
    assert rejected(conn) == [("people", *d) for d in dead]
    assert where(landing, "crm", "people_BATCH000001.csv") == ["archive"]
    status, total, rejects, _, message = row_log(conn)
    assert (status, total, rejects) == ("WARNING", len(loaded) + len(dead), len(dead))
    assert message.startswith(f"{len(dead)} of {len(loaded) + len(dead)} rows rejected")


def test_text_in_a_numeric_column(cfg, conn, landing) -> None:
    deliver(
        landing, "crm", "people.csv", HEADER + b"1,Ann,1.5,\n2,Bob,abc,\n3,Cid,n/a,\n4,Dan,4,\n5,Eve,5,\n"
    )
    out = run_batch(conn, "people")
    assert_rows_quarantined(
        conn,
        landing,
        out,
        [1, 4, 5],
        [(2, "amount", "amount: not a number: 'abc'"), (3, "amount", "amount: not a number: 'n/a'")],
    )
    raw = conn.execute(
        "SELECT raw_record FROM tools.rejected_rows WHERE client_schema = %s AND source_row_number = 2",
        (CLIENT,),
    ).fetchone()[0]
    assert raw == {"id": "2", "name": "Bob", "amount": "abc", "born": None}


def test_impossible_dates(cfg, conn, landing) -> None:
    deliver(
        landing,
        "crm",
        "people.csv",
        HEADER + b"1,Ann,1,2024-02-30\n2,Bob,2,2023-02-29\n3,Cid,3,2024-02-29\n4,Dan,4,2024-12-31\n",
    )
    out = run_batch(conn, "people")
    assert_rows_quarantined(
        conn,
        landing,
        out,
        [3, 4],
        [
            (1, "born", "born: not a valid date: '2024-02-30'"),
            (2, "born", "born: not a valid date: '2023-02-29'"),
        ],
    )


def test_nulls_in_a_required_column(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n,Bob,2,\n  ,Cid,3,\n4,Dan,4,\n")
    out = run_batch(conn, "people")
    assert_rows_quarantined(
        conn,
        landing,
        out,
        [1, 4],
        [(2, "id", "required value of id is empty"), (3, "id", "required value of id is empty")],
    )


def test_a_nul_byte_in_a_utf8_field_rejects_only_its_row(cfg, conn, landing) -> None:
    """A stray NUL byte is one bad row (PostgreSQL text cannot hold it), not a UTF-16 file."""
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n2,B\x00ob,2,\n3,Cid,3\x00,\n4,Dan,4,\n")
    out = run_batch(conn, "people")
    held = "a NUL byte in the value, which PostgreSQL text cannot hold"
    assert_rows_quarantined(
        conn,
        landing,
        out,
        [1, 4],
        [(2, "name", f"name: {held}: 'B\\x00ob'"), (3, "amount", f"amount: {held}: '3\\x00'")],
    )
    raw = conn.execute(
        "SELECT raw_record FROM tools.rejected_rows WHERE client_schema = %s AND source_row_number = 2",
        (CLIENT,),
    ).fetchone()[0]
    assert raw == {"id": "2", "name": "B\\x00ob", "amount": "2", "born": None}  # the NUL written out


def test_a_repeated_header_line_is_rejected_not_loaded(cfg, conn, landing, tmp_path) -> None:
    """Two exports concatenated: the second header line is no data row, even where every
    column is text and it would load as one."""
    text = [{"source": "id", "required": True}, {"source": "name"}, {"source": "amount"}, {"source": "born"}]
    write_config(tmp_path / "clients", columns=text)
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n" + HEADER + b"2,Bob,2,\n")
    out = run_batch(conn, "people")
    assert_rows_quarantined(conn, landing, out, [1, 3], [(2, None, "the header repeated at line 3")])
    assert bronze(conn, "people", "id, name") == [("1", "Ann"), ("2", "Bob")]


def test_a_repeated_header_is_named_as_such_in_typed_columns_too(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n2,Bob,2,\n" + HEADER.replace(b"\n", b"\r\n"))
    out = run_batch(conn, "people")
    assert_rows_quarantined(conn, landing, out, [1, 2], [(3, None, "the header repeated at line 4")])


def test_duplicate_keys_load_and_are_counted(cfg, conn, landing) -> None:
    # Bronze keeps what was delivered; silver keeps the latest row of a key.
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n2,Bob,2,\n1,Ann again,3,\n 2 ,Bob again,4,\n")
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert bronze(conn, "people", "id, name") == [(1, "Ann"), (2, "Bob"), (1, "Ann again"), (2, "Bob again")]
    assert row_log(conn) == (
        "WARNING",
        4,
        0,
        2,
        "0 of 4 rows rejected, 2 duplicate key(s); first duplicate key: id=1",
    )
    assert rejected(conn) == []


# ---------------------------------------------------------------------------- XLSX
def workbook(landing: Landing, sheets: dict[str, list[list[object]]], name: str = "book.xlsx") -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    folder = landing.raw(CLIENT, "sheets", "incoming")
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / name)
    complete(folder / name)


TITLE = [["Stock report"], ["exported 2026-01-31"]]


def test_xlsx_wrong_sheet(cfg, conn, landing) -> None:
    workbook(landing, {"Sheet1": [*TITLE, ["Code", "Qty"], ["A", 1]]})
    out = run_batch(conn, "book")
    assert_convert_failed(
        conn,
        landing,
        out,
        "sheets",
        "book.xlsx",
        "book",
        "book_BATCH000001.xlsx: no sheet named 'Data' (sheets: Sheet1)",
    )


def test_xlsx_title_rows_above_the_header(cfg, conn, landing) -> None:
    # Two more title lines than the config expects: the header is on row 5, not 3.
    workbook(landing, {"Data": [*TITLE, ["Filter: all"], [], ["Code", "Qty"], ["A", 1]]})
    out = run_batch(conn, "book")
    assert_convert_failed(
        conn,
        landing,
        out,
        "sheets",
        "book.xlsx",
        "book",
        "book_BATCH000001.xlsx: row 3 of sheet 'Data' is not the header ('Filter: all'); the header is on "
        "row 5: set reader.header_row: 5",
    )


def test_xlsx_row_numbers_are_the_sheet_rows(cfg, conn, landing) -> None:
    workbook(landing, {"Data": [*TITLE, ["Code", "Qty"], ["A", 1], ["B", "two"], [None, None], ["C", 3]]})
    out = run_batch(conn, "book")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    # Header on row 3: data on rows 4, 5 and 7 (row 6 is blank), as the operator sees them.
    assert bronze(conn, "book", "dwh_row_number, code, qty") == [(4, "A", 1), (7, "C", 3)]
    assert rejected(conn) == [("book", 5, "Qty", "Qty: not an integer: 'two'")]
    raw = conn.execute(
        "SELECT raw_record FROM tools.rejected_rows WHERE client_schema = %s", (CLIENT,)
    ).fetchone()
    assert raw == ({"Code": "B", "Qty": "two"},)


# ---------------------------------------------------------------------------- JSON
def test_invalid_json(cfg, conn, landing) -> None:
    deliver(landing, "app", "events.jsonl", b'{"eventId": "e1", "n": 1}\n{"eventId": "e2", "n": }\n')
    out = run_batch(conn, "events")
    assert_convert_failed(
        conn,
        landing,
        out,
        "app",
        "events.jsonl",
        "events",
        "events_BATCH000001.jsonl: line 2 is not valid JSON: Expecting value",
    )


@pytest.mark.parametrize(
    ("logical", "name", "data", "message"),
    [
        (
            "accounts",
            "accounts.json",
            b'{"accountId": "a1"}\n{"accountId": "a2"}\n',
            "accounts_BATCH000001.json: holds JSON objects one after another (JSON lines), but the config "
            "says a JSON array (reader.json_records: array)",
        ),
        (
            "events",
            "events.jsonl",
            b'[{"eventId": "e1"}, {"eventId": "e2"}]',
            "events_BATCH000001.jsonl: holds a JSON array, but the config says JSON lines "
            "(reader.json_records: lines)",
        ),
    ],
    ids=["lines-where-array-configured", "array-where-lines-configured"],
)
def test_json_array_vs_json_lines(cfg, conn, landing, logical, name, data, message) -> None:
    deliver(landing, "app", name, data)
    out = run_batch(conn, logical)
    assert_convert_failed(conn, landing, out, "app", name, logical, message)


def test_a_json_key_no_record_has_is_a_missing_column(cfg, conn, landing) -> None:
    # "n" renamed to "count" by the source: no record has the configured key any more.
    deliver(landing, "app", "events.jsonl", b'{"eventId": "e1", "count": 1}\n{"eventId": "e2"}\n')
    out = run_batch(conn, "events")
    message = "events_BATCH000001.parquet: column(s) missing from the file: n (file has unmapped: count)"
    assert (out.failed_task, out.message) == ("events.validate_mapping", message)
    assert mapping_log(conn) == ("FAILED", ["n"], ["count"], message)
    assert (landing.data(CLIENT, "app", "failed") / "events_BATCH000001.parquet").exists()
    assert bronze(conn, "events", "event_id") == []


def test_a_json_key_some_record_has_is_not_missing(cfg, conn, landing) -> None:
    deliver(landing, "app", "events.jsonl", b'{"eventId": "e1"}\n{"eventId": "e2", "n": 7}\n')
    out = run_batch(conn, "events")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert bronze(conn, "events", "event_id, n") == [("e1", None), ("e2", 7)]


# ---------------------------------------------------------------------------- deliveries
def test_a_file_name_matching_no_pattern(cfg, conn, landing) -> None:
    deliver(landing, "crm", "peoples.csv", GOOD)
    out = run_batch(conn, "people")
    assert out.opened == (
        "start BATCH000001: people=absent, book=absent, events=absent, accounts=absent; "
        "left in incoming: crm/peoples.csv (matches no file pattern)"
    )
    assert where(landing, "crm", "peoples.csv") == ["incoming"]  # left alone, nothing lost
    assert bronze(conn, "people", "id") == []


def test_the_same_file_delivered_twice(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", GOOD)
    assert run_batch(conn, "people").status == "SUCCESS"
    deliver(landing, "crm", "people_20260105.csv", GOOD)  # the same bytes, another name
    out = run_batch(conn, "people")
    assert out.batch_id == "BATCH000002"
    sha = conn.execute(
        """SELECT file_sha256 FROM tools.file_audit_log
           WHERE client_schema = %s AND batch_id = 'BATCH000001' AND logical_source_file = 'people'""",
        (CLIENT,),
    ).fetchone()[0]
    message = (
        f"people_20260105_BATCH000002.csv: the same content as people_BATCH000001.csv, already loaded by "
        f"BATCH000001 (sha256 {sha[:12]}): loaded again for BATCH000002; keyed gold rows are not duplicated"
    )
    # Loaded again, said out loud: every layer is batch-scoped or a keyed upsert, so a
    # re-sent file (an unchanged reference file, a repeated day) duplicates no gold row,
    # and the batch's checks (row counts) see its rows as for any delivery.
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert job(conn, "people.convert", "BATCH000002") == ("SUCCESS", message)
    assert where(landing, "crm", "people_20260105_BATCH000002.csv") == ["archive"]
    assert audit_row(conn, "people", "BATCH000002")[0] == "SUCCESS"
    assert bronze(conn, "people", "id", "BATCH000002") == [(1,), (2,), (3,)]


def test_a_symlink_or_a_name_leaving_its_folder(cfg, conn, landing, tmp_path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_bytes(GOOD)
    folder = landing.raw(CLIENT, "crm", "incoming")
    folder.mkdir(parents=True)
    (folder / "people.csv").symlink_to(secret)
    out = run_batch(conn, "people")
    assert out.opened.endswith("left in incoming: crm/people.csv (a symbolic link, refused)")
    assert (folder / "people.csv").is_symlink() and secret.read_bytes() == GOOD
    assert bronze(conn, "people", "id") == []
    # A file name that tries to leave its folder (a forged XCom) is refused, not followed.
    forged = {"batch_id": out.batch_id, "mode": "start", "files": {"people": "../../../../secret.csv"}}
    with pytest.raises(
        tasks.FailFast, match=r"^refusing unsafe file name '\.\./\.\./\.\./\.\./secret\.csv'$"
    ):
        tasks.convert(CLIENT, "people", forged, tasks.RunContext("forged", "people.convert"))
    assert secret.read_bytes() == GOOD


def test_a_very_long_line(cfg, conn, landing) -> None:
    long_name = "x" * 3_000_000  # far longer than a CSV read block
    deliver(landing, "crm", "people.csv", HEADER + f"1,{long_name},1,\n2,Bob,2,\n".encode())
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert bronze(conn, "people", "id, length(name)") == [(1, 3_000_000), (2, 3)]


def test_a_line_over_the_row_limit_is_refused(cfg, conn, landing) -> None:
    deliver(landing, "crm", "people.csv", HEADER + b"1,Ann,1,\n2," + b"y" * (9 * 1024 * 1024) + b",2,\n")
    out = run_batch(conn, "people")
    assert_convert_failed(
        conn,
        landing,
        out,
        "crm",
        "people.csv",
        "people",
        "people_BATCH000001.csv: line 3 is 9,437,189 bytes long, over the limit of 8 MiB per row",
    )


# ---------------------------------------------------------------------------- dead letters
def test_a_huge_bad_file_keeps_the_first_dead_letters_and_counts_the_rest(
    cfg, conn, landing, tmp_path
) -> None:
    write_config(tmp_path / "clients", reject_policy={"max_ratio": 1.0, "keep_dead_letters": 100})
    rows = b"".join(b"%d,n,bad,\n" % i for i in range(1, 5001)) + b"5001,n,1,\n"
    deliver(landing, "crm", "people.csv", HEADER + rows)
    out = run_batch(conn, "people")
    message = (
        "people_BATCH000001.parquet: 5000 rejected rows exceed the 100 dead letters kept per file "
        "(reject_policy.keep_dead_letters); first: row 1 amount: not a number: 'bad'; "
        "only the first 100 rejected rows kept as dead letters"
    )
    assert (out.failed_task, out.message, out.status) == ("people.validate_rows", message, "PARTIAL")
    stored = rejected(conn)
    assert [r[1] for r in stored] == list(range(1, 101))
    assert row_log(conn)[:4] == ("FAILED", 5001, 5000, 0)
    assert audit_row(conn, "people")[2:6] == ("FAILED", None, 5001, 5000)
    assert (landing.data(CLIENT, "crm", "failed") / "people_BATCH000001.parquet").exists()
    assert where(landing, "crm", "people_BATCH000001.csv") == ["failed"]
    assert bronze(conn, "people", "id") == []


# ---------------------------------------------------------------------------- schema registry and drift
def registry(conn) -> list[tuple]:
    return conn.execute(
        """SELECT version, columns, config_version FROM tools.schema_registry
           WHERE client_schema = %s AND logical_source_file = 'people' ORDER BY version""",
        (CLIENT,),
    ).fetchall()


def test_the_schema_registry_versions_each_change_of_the_columns(cfg, conn, landing, tmp_path) -> None:
    deliver(landing, "crm", "people.csv", GOOD)
    run_batch(conn, "people")
    (first,) = registry(conn)
    assert first[0] == 1 and first[2] == cfg.config_version
    assert first[1][0] == {"source": "id", "target": "id", "type": "integer", "required": True}
    # The same columns again (another setting changed): no new version.
    write_config(tmp_path / "clients", reject_policy={"max_ratio": 0.4})
    deliver(landing, "crm", "people_20260102.csv", GOOD + b"4,Dan,4,\n")
    run_batch(conn, "people")
    assert [v for v, _, _ in registry(conn)] == [1]
    # A retyped column: version 2, and the drift log names the version a file was checked against.
    columns = CONFIG["sources"][0]["files"][0]["columns"]
    write_config(
        tmp_path / "clients", columns=[*columns[:2], {"source": "amount", "type": "text"}, columns[3]]
    )
    deliver(landing, "crm", "people_20260103.csv", b"id,name,amount,born,note\n1,Ann,1,,x\n")
    run_batch(conn, "people")
    assert [(v, c[2]["type"]) for v, c, _ in registry(conn)] == [(1, "numeric"), (2, "text")]
    assert [(v, action) for v, _, _, _, _, action, _ in drift_log(conn)] == [(2, "ACCEPTED")]


def test_drift_policy_fail_refuses_an_added_column(cfg, conn, landing, tmp_path) -> None:
    write_config(tmp_path / "clients", schema_drift="fail")
    deliver(landing, "crm", "people.csv", b"id,name,amount,born,note\n1,Ann,1,,hello\n")
    out = run_batch(conn, "people")
    message = "people_BATCH000001.parquet: column(s) added: note (schema_drift: fail)"
    assert_mapping_failed(conn, landing, out, message)
    assert drift_log(conn) == [(1, "fail", ["note"], [], [], "FAILED", message)]


def test_a_retyped_column_fails_under_either_policy(cfg, conn, landing) -> None:
    # amount is registered numeric; this delivery holds status words in it, every row.
    rows = b"".join(b"%d,n%d,%s,2024-01-01\n" % (i, i, w) for i, w in enumerate([b"paid", b"open"] * 6, 1))
    deliver(landing, "crm", "people.csv", HEADER + rows)
    out = run_batch(conn, "people")
    message = "people_BATCH000001.parquet: column(s) retyped: amount (numeric -> text, e.g. 'paid', 'open')"
    assert_mapping_failed(conn, landing, out, message)
    retyped = [{"column": "amount", "registered": "numeric", "delivered": "text", "sample": ["paid", "open"]}]
    assert drift_log(conn) == [(1, "accept_additive", [], [], retyped, "FAILED", message)]


def test_a_few_bad_values_are_rows_to_reject_not_a_retyped_column(cfg, conn, landing) -> None:
    rows = b"".join(b"%d,n,%s,\n" % (i, b"x" if i == 3 else b"%d" % i) for i in range(1, 13))
    deliver(landing, "crm", "people.csv", HEADER + rows)
    out = run_batch(conn, "people")
    assert (out.failed_task, out.status) == (None, "SUCCESS")
    assert drift_log(conn) == []
    assert rejected(conn) == [("people", 3, "amount", "amount: not a number: 'x'")]
