"""Warehouse: versioned migrations, bronze DDL and config sync, and the bronze COPY load
(idempotent per batch, all-or-nothing), on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from include.etl.config import ClientConfig
from include.etl.ingest import bronze
from include.etl.ingest.bronze import TypedFile, load_bronze, typed_file_mismatch
from include.etl.ingest.convert import convert_to_parquet
from include.etl.ingest.landing import typed_name
from include.etl.ingest.validation import validate_rows
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client

# information_schema.columns.data_type of each config column type
INFO_TYPES = {
    "text": "text",
    "integer": "bigint",
    "numeric": "numeric",
    "date": "date",
    "timestamp": "timestamp without time zone",
    "boolean": "boolean",
}
LINEAGE = [
    ("dwh_batch_id", "text", "NO"),
    ("dwh_source_file", "text", "NO"),
    ("dwh_row_number", "bigint", "NO"),
    ("dwh_loaded_at", "timestamp with time zone", "NO"),
]


def libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@pytest.fixture
def fresh_conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    """A connection to a brand-new, empty database of its own (dropped afterwards)."""
    parts = urlsplit(libpq(warehouse_url))
    name = f"{parts.path.lstrip('/')}_migrate_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(urlunsplit(parts._replace(path=f"/{name}")), autocommit=True) as conn:
            yield conn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def client1(conn: psycopg.Connection, clients: dict[str, ClientConfig]) -> ClientConfig:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    return cfg


def bronze_columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str, str]]:
    return conn.execute(
        """SELECT column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
        (schema, table),
    ).fetchall()


# ------------------------------------------------------------------ migrations
def test_migrate_applies_each_migration_once(fresh_conn: psycopg.Connection, clients) -> None:
    configs = [clients["client1"], clients["client2"]]
    applied = migrate(fresh_conn, configs)
    assert applied == [
        "tools/V001__tools.sql",
        "tools/V002__client_lease.sql",
        "tools/V003__backfill.sql",
        "tools/V004__schema_registry.sql",
        "tools/V005__sql_step_state.sql",
        "tools/V006__step_side_tables.sql",
        "tools/V007__housekeeping_log.sql",
        "tools/V008__batch_health.sql",
        "tools/V009__shared_functions.sql",
        "tools/V010__database_sources.sql",
        "tools/V011__snapshot_deliveries.sql",
        "tools/V012__sql_step_log_again_after.sql",
        "tools/V013__snapshot_same_as.sql",
        "tools/V014__snapshot_compared_on.sql",
        "client1/V001__silver_gold.sql",
        "client1/V002__fact_sales_without_fks.sql",
        "client1/V003__sales_details_batch_brin.sql",
        "client1/V004__fewer_batch_indexes.sql",
        "client1/V005__summary_tables.sql",
        "client1/V006__helpers_in_shared_schema.sql",
        "client1/V007__fact_sales_summary_indexes.sql",
        "client1/V008__snapshot_changed_keys.sql",
        "client1/V009__snapshot_birth_date_keys.sql",
        "client2/V001__silver_gold.sql",
        "client2/V002__usage_events_without_fk.sql",
        "client2/V003__fewer_batch_indexes.sql",
    ]
    recorded = fresh_conn.execute(
        "SELECT scope, version, name, length(checksum) FROM tools.schema_migrations ORDER BY scope, version"
    ).fetchall()
    assert recorded == [
        ("client1", 1, "silver_gold", 16),
        ("client1", 2, "fact_sales_without_fks", 16),
        ("client1", 3, "sales_details_batch_brin", 16),
        ("client1", 4, "fewer_batch_indexes", 16),
        ("client1", 5, "summary_tables", 16),
        ("client1", 6, "helpers_in_shared_schema", 16),
        ("client1", 7, "fact_sales_summary_indexes", 16),
        ("client1", 8, "snapshot_changed_keys", 16),
        ("client1", 9, "snapshot_birth_date_keys", 16),
        ("client2", 1, "silver_gold", 16),
        ("client2", 2, "usage_events_without_fk", 16),
        ("client2", 3, "fewer_batch_indexes", 16),
        ("tools", 1, "tools", 16),
        ("tools", 2, "client_lease", 16),
        ("tools", 3, "backfill", 16),
        ("tools", 4, "schema_registry", 16),
        ("tools", 5, "sql_step_state", 16),
        ("tools", 6, "step_side_tables", 16),
        ("tools", 7, "housekeeping_log", 16),
        ("tools", 8, "batch_health", 16),
        ("tools", 9, "shared_functions", 16),
        ("tools", 10, "database_sources", 16),
        ("tools", 11, "snapshot_deliveries", 16),
        ("tools", 12, "sql_step_log_again_after", 16),
        ("tools", 13, "snapshot_same_as", 16),
        ("tools", 14, "snapshot_compared_on", 16),
    ]
    assert migrate(fresh_conn, configs) == []
    assert fresh_conn.execute("SELECT count(*) FROM tools.schema_migrations").fetchone()[0] == 26
    schemas = {
        s
        for (s,) in fresh_conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '%client%'"
        )
    }
    assert schemas == {
        f"{layer}_{c}" for layer in ("bronze", "silver", "gold") for c in ("client1", "client2")
    }


def test_the_embedded_warehouse_collates_in_byte_order(conn: psycopg.Connection) -> None:
    """scripts/devenv.py creates its cluster with LC_COLLATE=C (text keys sort with memcmp)
    and UTF-8 character classes, as docker-compose creates the warehouse database."""
    collate, ctype, encoding = conn.execute(
        "SELECT datcollate, datctype, pg_encoding_to_char(encoding) FROM pg_database"
        " WHERE datname = current_database()"
    ).fetchone()
    assert (collate, ctype, encoding) == ("C", "C.UTF-8", "UTF8")
    assert conn.execute("SELECT upper('émile'), 'b' > 'B'").fetchone() == ("ÉMILE", True)


def test_migrate_after_reset_applies_only_the_client(conn: psycopg.Connection, clients) -> None:
    cfg = clients["client1"]
    migrate(conn, [cfg])  # the tools schema exists from here on
    reset_client(conn, cfg)
    assert migrate(conn, [cfg]) == [
        "client1/V001__silver_gold.sql",
        "client1/V002__fact_sales_without_fks.sql",
        "client1/V003__sales_details_batch_brin.sql",
        "client1/V004__fewer_batch_indexes.sql",
        "client1/V005__summary_tables.sql",
        "client1/V006__helpers_in_shared_schema.sql",
        "client1/V007__fact_sales_summary_indexes.sql",
        "client1/V008__snapshot_changed_keys.sql",
        "client1/V009__snapshot_birth_date_keys.sql",
    ]
    assert migrate(conn, [cfg]) == []
    count = conn.execute("SELECT count(*) FROM tools.schema_migrations WHERE scope = 'client1'").fetchone()[0]
    assert count == 9


@pytest.mark.parametrize("client", ["client1", "client2"])
def test_bronze_tables_match_the_config(conn: psycopg.Connection, clients, client: str) -> None:
    cfg = clients[client]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    tables = {
        t
        for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (cfg.bronze_schema,)
        )
    }
    assert tables == {f.bronze_table for _, f in cfg.files}
    for _, f in cfg.files:
        expected = [(c.name, INFO_TYPES[c.type], "YES") for c in f.columns] + LINEAGE
        assert bronze_columns(conn, cfg.bronze_schema, f.bronze_table) == expected, f.name
    indexes = {
        i
        for (i,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (cfg.bronze_schema,)
        )
    }
    assert indexes == {f"{f.bronze_table}_batch_idx" for _, f in cfg.files}


def test_client1_bronze_types(conn: psycopg.Connection, client1: ClientConfig) -> None:
    columns = bronze_columns(conn, "bronze_client1", "crm_prd_info")
    assert [(n, t) for n, t, _ in columns] == [
        ("prd_id", "bigint"),
        ("prd_key", "text"),
        ("prd_nm", "text"),
        ("prd_cost", "numeric"),
        ("prd_line", "text"),
        ("prd_start_dt", "date"),
        ("prd_end_dt", "date"),
        ("dwh_batch_id", "text"),
        ("dwh_source_file", "text"),
        ("dwh_row_number", "bigint"),
        ("dwh_loaded_at", "timestamp with time zone"),
    ]


def test_config_is_synced_into_the_tools_tables(conn: psycopg.Connection, client1: ClientConfig) -> None:
    cfg = client1
    reference = conn.execute(
        """SELECT display_name, owner, config_file, config_version, last_batch_id
           FROM tools.client_reference WHERE client_schema = 'client1'"""
    ).fetchall()
    assert reference == [(cfg.display_name, "retail-data-team", "client1.yaml", cfg.config_version, 0)]

    files = conn.execute(
        """SELECT logical_source_file, source_system, source_type, file_pattern, target_schema,
                  target_table, is_required, key_columns, reject_max_rows, reject_max_ratio,
                  reader_options, config_version
           FROM tools.client_config WHERE client_schema = 'client1' ORDER BY logical_source_file"""
    ).fetchall()
    assert [f[0] for f in files] == sorted(f.name for _, f in cfg.files)
    cust = next(f for f in files if f[0] == "cust_info")
    assert cust == (
        "cust_info",
        "crm",
        "csv",
        r"cust_info(_\d{8})?\.csv",
        "bronze_client1",
        "crm_cust_info",
        True,
        ["cst_id"],
        None,
        Decimal("0.05"),
        {"delimiter": ",", "encoding": "utf-8", "sheet": None, "header_row": 1, "json_records": "auto"},
        cfg.config_version,
    )
    sales = next(f for f in files if f[0] == "sales_details")
    assert sales[7] == ["sls_ord_num", "sls_prd_key"]

    mapping = conn.execute(
        """SELECT ordinal, source_column, target_column, data_type, is_required FROM tools.column_mapping
           WHERE client_schema = 'client1' AND logical_source_file = 'CUST_AZ12' ORDER BY ordinal"""
    ).fetchall()
    assert mapping == [
        (1, "CID", "cid", "text", True),
        (2, "BDATE", "bdate", "date", False),
        (3, "GEN", "gen", "text", False),
    ]
    total = conn.execute(
        "SELECT count(*) FROM tools.column_mapping WHERE client_schema = 'client1'"
    ).fetchone()[0]
    assert total == sum(len(f.columns) for _, f in cfg.files)

    steps = conn.execute(
        """SELECT layer, step_name, sql_file, target_table, run_order, depends_on, config_version
           FROM tools.sql_step_config WHERE client_schema = 'client1' ORDER BY run_order"""
    ).fetchall()
    expected = [("silver", s.name, s.sql, s.table, s.depends_on) for s in cfg.silver]
    expected += [("gold", s.name, s.sql, s.table, s.depends_on) for s in cfg.gold]
    expected += [("views", v.name, v.sql, v.name, []) for v in cfg.views]
    assert [(*s[:4], s[5]) for s in steps] == expected
    assert [s[4] for s in steps] == list(range(1, len(expected) + 1))
    assert {s[6] for s in steps} == {cfg.config_version}
    assert ("gold", "fact_sales", "gold/fact_sales.sql", "fact_sales", ["dim_customers", "dim_products"]) in [
        (*s[:4], s[5]) for s in steps
    ]


def test_client2_mapping_uses_the_targets(conn: psycopg.Connection, clients) -> None:
    cfg = clients["client2"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    mapping = conn.execute(
        """SELECT source_column, target_column, data_type, is_required FROM tools.column_mapping
           WHERE client_schema = 'client2' AND logical_source_file = 'invoices' ORDER BY ordinal LIMIT 2"""
    ).fetchall()
    assert mapping == [("Invoice No", "invoice_no", "text", True), ("Account ID", "account_id", "text", True)]
    plans = conn.execute(
        """SELECT is_required, reader_options->>'delimiter', reader_options->>'encoding'
           FROM tools.client_config WHERE client_schema = 'client2' AND logical_source_file = 'plans'"""
    ).fetchone()
    assert plans == (False, ";", "latin-1")


def test_sync_follows_a_changed_config(conn: psycopg.Connection, client1: ClientConfig) -> None:
    conn.execute("UPDATE tools.client_reference SET last_batch_id = 7 WHERE client_schema = 'client1'")
    data = client1.model_dump()
    cust = data["sources"][0]["files"][0]
    cust["columns"].append(
        {"source": "cst_email", "target": None, "type": "text", "required": False, "format": None}
    )
    data["sources"][1]["files"] = data["sources"][1]["files"][:1]  # drop LOC_A101 and PX_CAT_G1V2
    data["silver"] = data["silver"][:2]
    kept = {f"silver.{s['table']}" for s in data["silver"]} | {f"gold.{s['table']}" for s in data["gold"]}
    quality = data["quality"]  # and the quality gates on the silver tables no step writes now
    quality["keys"] = [k for k in quality["keys"] if k["table"] in kept]
    quality["row_counts"] = [t for t in quality["row_counts"] if t in kept]
    data["lineage"] = [e for e in data["lineage"] if f"silver.{e['silver']}" in kept]  # and the lineage
    data["config_version"] = "changed"
    changed = ClientConfig.model_validate(data)
    assert migrate(conn, [changed]) == []

    columns = [n for n, _, _ in bronze_columns(conn, "bronze_client1", "crm_cust_info")]
    assert columns[-1] == "cst_email"  # added to the existing table
    files = {
        f
        for (f,) in conn.execute(
            "SELECT logical_source_file FROM tools.client_config WHERE client_schema = 'client1'"
        )
    }
    assert files == {"cust_info", "prd_info", "sales_details", "CUST_AZ12"}
    orphans = conn.execute(
        """SELECT count(*) FROM tools.column_mapping
           WHERE client_schema = 'client1' AND logical_source_file IN ('LOC_A101', 'PX_CAT_G1V2')"""
    ).fetchone()[0]
    assert orphans == 0
    silver = conn.execute(
        "SELECT count(*) FROM tools.sql_step_config WHERE client_schema = 'client1' AND layer = 'silver'"
    ).fetchone()[0]
    assert silver == 2
    ref = conn.execute(
        "SELECT config_version, last_batch_id FROM tools.client_reference WHERE client_schema = 'client1'"
    ).fetchone()
    assert ref == ("changed", 7)  # the batch counter survives a sync


# ------------------------------------------------------------------ bronze load
HEADER = "cst_id,cst_key,cst_firstname,cst_lastname,cst_marital_status,cst_gndr,cst_create_date\n"
GOOD_ROWS = (
    "1,AW1, Jon ,Yang,M,M,2024-01-05\n"
    '2,AW2,"Smith, ""Jr""",Lee,S,F,\n'
    '3,AW3,"two\nlines",\\N,,, 2024-02-29 \n'
    "x,AW4,bad id,Row,S,M,2024-01-01\n"
    " 5 ,AW5,Éva,Nagy,,,2024-03-31\n"
    "6,AW6,Bad,Date,,,2024-02-30\n"
)
EXPECTED_ROWS = [
    (1, "AW1", " Jon ", "Yang", "M", "M", dt.date(2024, 1, 5), 1),
    (2, "AW2", 'Smith, "Jr"', "Lee", "S", "F", None, 2),
    (3, "AW3", "two\nlines", "\\N", None, None, dt.date(2024, 2, 29), 3),
    (5, "AW5", "Éva", "Nagy", None, None, dt.date(2024, 3, 31), 5),
]


def make_parquet(folder: Path, cfg: ClientConfig, name: str, rows: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / f"{name}.csv"
    src.write_text(HEADER + rows, encoding="utf-8")
    dest = folder / f"{name}.parquet"
    convert_to_parquet(src, dest, cfg.file("cust_info")[1])
    return dest


def bronze_rows(conn: psycopg.Connection, batch_id: str) -> list[tuple]:
    return conn.execute(
        """SELECT cst_id, cst_key, cst_firstname, cst_lastname, cst_marital_status, cst_gndr,
                  cst_create_date, dwh_row_number
           FROM bronze_client1.crm_cust_info WHERE dwh_batch_id = %s ORDER BY dwh_row_number""",
        (batch_id,),
    ).fetchall()


def count(conn: psycopg.Connection, batch_id: str | None = None) -> int:
    if batch_id is None:
        return conn.execute("SELECT count(*) FROM bronze_client1.crm_cust_info").fetchone()[0]
    return conn.execute(
        "SELECT count(*) FROM bronze_client1.crm_cust_info WHERE dwh_batch_id = %s", (batch_id,)
    ).fetchone()[0]


def test_load_bronze_loads_the_good_rows(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    parquet = make_parquet(tmp_path, client1, "cust_info_BATCH000001", GOOD_ROWS)
    rejected = {r.row_number for r in validate_rows(parquet, spec).rejects}
    assert rejected == {4, 6}
    loaded = load_bronze(conn, client1, spec, parquet, "BATCH000001", "cust_info_BATCH000001.csv", rejected)
    assert loaded == 4
    assert bronze_rows(conn, "BATCH000001") == EXPECTED_ROWS
    lineage = conn.execute(
        """SELECT DISTINCT dwh_batch_id, dwh_source_file, dwh_loaded_at IS NOT NULL
           FROM bronze_client1.crm_cust_info"""
    ).fetchall()
    assert lineage == [("BATCH000001", "cust_info_BATCH000001.csv", True)]


@pytest.mark.parametrize("way", ["typed, binary COPY", "typed, CSV text", "typed by the load"])
def test_load_bronze_all_types(
    conn: psycopg.Connection, clients, tmp_path: Path, way, monkeypatch, caplog
) -> None:
    """Every way of loading gives the same typed values (a numeric's scale, NULLs, booleans)."""
    caplog.set_level(logging.INFO, logger="include.etl.ingest.bronze")
    monkeypatch.setattr(bronze, "SMALL_LOAD_BYTES", 0 if way == "typed, binary COPY" else 8 * 1024 * 1024)
    cfg = clients["client2"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    spec = cfg.file("plans")[1]
    src = tmp_path / "plans_BATCH000001.csv"
    text = (
        "PlanCode;Plan Name;Tier;Monthly Price;Billing Period;Active\n"
        "P1;Café;gold; 9.90 ;monthly;Yes\n"
        "P2;;;;;0\n"
    )
    src.write_bytes(text.encode("latin-1"))
    parquet = tmp_path / "plans.parquet"
    convert_to_parquet(src, parquet, spec)
    typed = None
    if way == "typed by the load":
        assert validate_rows(parquet, spec).rejects == []
    else:
        typed, rejected = validate_typed(parquet, spec, "BATCH000001", src.name)
        assert rejected == set()
    assert load_bronze(conn, cfg, spec, parquet, "BATCH000001", src.name, typed=typed) == 2
    as_text = [r.getMessage() for r in caplog.records if "copied as CSV text" in r.getMessage()]
    expected = ["plans.bronze.arrow: a small file, copied as CSV text"] if way == "typed, CSV text" else []
    assert as_text == expected
    rows = conn.execute(
        """SELECT plan_code, plan_name, tier, monthly_price, billing_period, is_active
           FROM bronze_client2.billing_plans ORDER BY dwh_row_number"""
    ).fetchall()
    assert rows == [
        ("P1", "Café", "gold", Decimal("9.90"), "monthly", True),
        ("P2", None, None, None, None, False),
    ]
    reset_client(conn, cfg)


def test_second_load_of_a_batch_replaces_it(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    parquet = make_parquet(tmp_path, client1, "cust_info_BATCH000001", GOOD_ROWS)
    other = make_parquet(tmp_path / "other", client1, "cust_info_BATCH000002", "10,B10,Other,Batch,,,\n")
    assert load_bronze(conn, client1, spec, other, "BATCH000002", "cust_info_BATCH000002.csv") == 1
    for _ in range(2):
        assert (
            load_bronze(conn, client1, spec, parquet, "BATCH000001", "cust_info_BATCH000001.csv", {4, 6}) == 4
        )
        assert count(conn, "BATCH000001") == 4
        assert bronze_rows(conn, "BATCH000001") == EXPECTED_ROWS
    # Without the rejected set the batch is replaced again, by other rows.
    smaller = make_parquet(tmp_path / "smaller", client1, "cust_info_BATCH000001", "1,AW1,A,B,,,\n")
    assert load_bronze(conn, client1, spec, smaller, "BATCH000001", "cust_info_BATCH000001.csv") == 1
    assert count(conn, "BATCH000001") == 1
    assert bronze_rows(conn, "BATCH000002") == [(10, "B10", "Other", "Batch", None, None, None, 1)]
    assert count(conn) == 2


def test_load_in_small_batches_skips_rejected_rows_across_batches(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    rows = "".join(f"{i},K{i},,,,,\n" for i in range(1, 11))
    parquet = make_parquet(tmp_path, client1, "many", rows)
    loaded = load_bronze(conn, client1, spec, parquet, "BATCH000003", "many.csv", {1, 4, 5, 10}, batch_rows=3)
    assert loaded == 6
    numbers = [
        n for (n,) in conn.execute("SELECT dwh_row_number FROM bronze_client1.crm_cust_info ORDER BY 1")
    ]
    ids = [i for (i,) in conn.execute("SELECT cst_id FROM bronze_client1.crm_cust_info ORDER BY 1")]
    assert numbers == ids == [2, 3, 6, 7, 8, 9]


def test_failed_load_keeps_the_earlier_rows(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    good = make_parquet(tmp_path, client1, "good", GOOD_ROWS)
    other = make_parquet(tmp_path / "other", client1, "other", "10,B10,Other,Batch,,,\n")
    load_bronze(conn, client1, spec, good, "BATCH000001", "good.csv", {4, 6})
    load_bronze(conn, client1, spec, other, "BATCH000002", "other.csv")
    # Seven good rows, then one whose id cannot be cast: validation would have rejected it,
    # but here no rejected set is passed, so COPY fails after several written chunks.
    bad_rows = "".join(f"{i},N{i},,,,,\n" for i in range(100, 107)) + "oops,N107,,,,,\n"
    bad = make_parquet(tmp_path / "bad", client1, "bad", bad_rows)
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        load_bronze(conn, client1, spec, bad, "BATCH000001", "bad.csv", batch_rows=2)
    assert bronze_rows(conn, "BATCH000001") == EXPECTED_ROWS  # the DELETE was rolled back too
    files = conn.execute(
        """SELECT DISTINCT dwh_source_file FROM bronze_client1.crm_cust_info
           WHERE dwh_batch_id = 'BATCH000001'"""
    ).fetchall()
    assert files == [("good.csv",)]
    assert count(conn, "BATCH000002") == 1
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # The connection is usable, and a corrected load replaces the batch.
    assert load_bronze(conn, client1, spec, bad, "BATCH000001", "bad.csv", {8}) == 7
    assert count(conn, "BATCH000001") == 7


def test_failed_copy_after_the_delete_is_rolled_back(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    good = make_parquet(tmp_path, client1, "good", GOOD_ROWS)
    load_bronze(conn, client1, spec, good, "BATCH000001", "good.csv", {4, 6})
    conn.execute("ALTER TABLE bronze_client1.crm_cust_info DROP COLUMN cst_gndr")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        load_bronze(conn, client1, spec, good, "BATCH000001", "good.csv", {4, 6})
    assert count(conn, "BATCH000001") == 4
    migrate(conn, [client1])  # the additive DDL puts the column back
    assert load_bronze(conn, client1, spec, good, "BATCH000001", "good.csv", {4, 6}) == 4
    assert count(conn, "BATCH000001") == 4


def validate_typed(parquet: Path, spec, batch_id: str, source_file: str) -> tuple[Path, set[int]]:
    """Validate as the validate_rows task does: the typed rows written beside the file."""
    typed = TypedFile(parquet.with_name(typed_name(parquet.name)), spec, parquet, batch_id, source_file)
    rejected = {r.row_number for r in validate_rows(parquet, spec, typed=typed).rejects}
    typed.commit(rejected)
    return typed.path, rejected


@pytest.mark.parametrize("small_load_bytes", [0, 8 * 1024 * 1024], ids=["binary COPY", "CSV text"])
def test_load_bronze_streams_the_typed_rows_of_validation(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path, small_load_bytes, monkeypatch
) -> None:
    monkeypatch.setattr(bronze, "SMALL_LOAD_BYTES", small_load_bytes)
    spec = client1.file("cust_info")[1]
    parquet = make_parquet(tmp_path, client1, "cust_info_BATCH000001", GOOD_ROWS)
    typed, rejected = validate_typed(parquet, spec, "BATCH000001", "cust_info_BATCH000001.csv")
    assert typed.name == "cust_info_BATCH000001.bronze.arrow" and rejected == {4, 6}
    assert (
        typed_file_mismatch(typed, spec, parquet, "BATCH000001", "cust_info_BATCH000001.csv", {4, 6}) is None
    )
    for _ in range(2):  # a re-run replaces the batch
        loaded = load_bronze(
            conn, client1, spec, parquet, "BATCH000001", "cust_info_BATCH000001.csv", rejected, typed=typed
        )
        assert loaded == 4 and count(conn, "BATCH000001") == 4
        assert bronze_rows(conn, "BATCH000001") == EXPECTED_ROWS
    lineage = conn.execute(
        "SELECT DISTINCT dwh_batch_id, dwh_source_file FROM bronze_client1.crm_cust_info"
    ).fetchall()
    assert lineage == [("BATCH000001", "cust_info_BATCH000001.csv")]
    defaults = conn.execute(  # the lineage defaults of the load are gone
        """SELECT column_name, column_default FROM information_schema.columns
           WHERE table_schema = 'bronze_client1' AND table_name = 'crm_cust_info__batch000001'
             AND column_name LIKE 'dwh%' ORDER BY column_name"""
    ).fetchall()
    assert defaults == [
        ("dwh_batch_id", None),
        ("dwh_loaded_at", "now()"),
        ("dwh_row_number", None),
        ("dwh_source_file", None),
    ]


def test_typed_rows_made_for_other_arguments_are_not_loaded(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    spec = client1.file("cust_info")[1]
    parquet = make_parquet(tmp_path, client1, "cust_info_BATCH000001", GOOD_ROWS)
    typed, _ = validate_typed(parquet, spec, "BATCH000001", "cust_info_BATCH000001.csv")
    source = "cust_info_BATCH000001.csv"
    assert "rejected" in typed_file_mismatch(typed, spec, parquet, "BATCH000001", source, {1, 4, 6})
    assert "batch_id" in typed_file_mismatch(typed, spec, parquet, "BATCH000002", source, {4, 6})
    other = spec.model_copy(update={"columns": spec.columns[:-1]})
    assert "columns" in typed_file_mismatch(typed, other, parquet, "BATCH000001", source, {4, 6})
    # The rejected rows now include row 1: the load types the rows itself, without it.
    assert load_bronze(conn, client1, spec, parquet, "BATCH000001", source, {1, 4, 6}, typed=typed) == 3
    assert bronze_rows(conn, "BATCH000001") == EXPECTED_ROWS[1:]


def test_rows_validation_cannot_type_are_loaded_as_text(
    conn: psycopg.Connection, clients, tmp_path: Path
) -> None:
    cfg = clients["client2"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    spec = cfg.file("plans")[1]
    src = tmp_path / "plans_BATCH000001.csv"
    src.write_text(
        "PlanCode;Plan Name;Tier;Monthly Price;Billing Period;Active\nP1;;;9.90;;1\nP2;;;12.5;;0\n"
    )
    parquet = tmp_path / "plans_BATCH000001.parquet"
    convert_to_parquet(src, parquet, spec)
    typed, rejected = validate_typed(parquet, spec, "BATCH000001", src.name)
    assert not typed.exists() and rejected == set()  # two scales: no typed rows
    assert load_bronze(conn, cfg, spec, parquet, "BATCH000001", src.name, rejected, typed=typed) == 2
    prices = conn.execute("SELECT monthly_price FROM bronze_client2.billing_plans ORDER BY dwh_row_number")
    assert [p for (p,) in prices] == [Decimal("9.90"), Decimal("12.5")]
    reset_client(conn, cfg)


# ------------------------------------------------------------------ review fixes
def test_a_batch_with_an_unchanged_config_runs_no_bronze_ddl(conn: psycopg.Connection, client1) -> None:
    from include.etl.warehouse.migrations import bronze_columns as existing_columns
    from include.etl.warehouse.migrations import bronze_ddl

    assert bronze_ddl(client1, existing_columns(conn, client1)) == []
    conn.execute("ALTER TABLE bronze_client1.crm_cust_info DROP COLUMN cst_gndr")
    (statement,) = bronze_ddl(client1, existing_columns(conn, client1))
    assert (
        statement.as_string(conn) == 'ALTER TABLE "bronze_client1"."crm_cust_info" ADD COLUMN "cst_gndr" text'
    )


def test_a_migration_edited_after_it_ran_or_failing_names_its_file(
    fresh_conn: psycopg.Connection, clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import include.etl.config
    import include.etl.warehouse.migrations
    from include.etl.warehouse.migrations import MigrationError

    sql_root = tmp_path / "sql"
    shutil.copytree(include.etl.config.SQL_DIR / "tools", sql_root / "tools")
    template = include.etl.config.SQL_DIR / "templates" / "retail_crm_erp"
    shutil.copytree(template, sql_root / "templates" / "retail_crm_erp")
    monkeypatch.setattr(include.etl.config, "SQL_DIR", sql_root)
    monkeypatch.setattr(include.etl.warehouse.migrations, "SQL_DIR", sql_root)
    cfg = clients["client1"]
    migrate(fresh_conn, [cfg])

    edited = sql_root / "templates" / "retail_crm_erp" / "migrations" / "V001__silver_gold.sql"
    edited.write_text(edited.read_text() + "\n-- an afterthought\n")
    with pytest.raises(MigrationError, match=r"^client1/V001__silver_gold.sql changed after it was applied"):
        migrate(fresh_conn, [cfg])

    edited.write_text(edited.read_text().replace("\n-- an afterthought\n", ""))
    (edited.parent / "V099__broken.sql").write_text("ALTER TABLE silver_client1.nope ADD COLUMN x int;")
    with pytest.raises(MigrationError, match=r"^client1/V099__broken.sql failed: relation .* does not exist"):
        migrate(fresh_conn, [cfg])
    applied = fresh_conn.execute(
        "SELECT count(*) FROM tools.schema_migrations WHERE scope = 'client1' AND version = 99"
    ).fetchone()
    assert applied == (0,)


def test_a_template_is_migrated_for_each_client_with_its_names(conn: psycopg.Connection, clients) -> None:
    client1, client3 = clients["client1"], clients["client3"]
    migrate(conn, [client1])
    reset_client(conn, client3)
    applied = migrate(conn, [client3])
    assert applied == [
        "client3/V001__silver_gold.sql",
        "client3/V002__fact_sales_without_fks.sql",
        "client3/V003__sales_details_batch_brin.sql",
        "client3/V004__fewer_batch_indexes.sql",
        "client3/V005__summary_tables.sql",
        "client3/V006__helpers_in_shared_schema.sql",
        "client3/V007__fact_sales_summary_indexes.sql",
        "client3/V008__snapshot_changed_keys.sql",
        "client3/V009__snapshot_birth_date_keys.sql",
    ]
    recorded = {
        scope: dict(
            conn.execute(
                "SELECT version, checksum FROM tools.schema_migrations WHERE scope = %s", (scope,)
            ).fetchall()
        )
        for scope in ("client1", "client3")
    }
    assert sorted(recorded["client3"]) == sorted(recorded["client1"]) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # the rendered text is what is recorded: the names differ, so the checksums do
    assert all(recorded["client3"][v] != recorded["client1"][v] for v in recorded["client1"])
    columns = conn.execute(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = %s AND column_name = 'dwh_batch_id' ORDER BY 1""",
        ("silver_client3",),
    ).fetchall()
    assert [t for t, _ in columns] == [s.table for s in sorted(client3.silver, key=lambda s: s.table)]
    functions = conn.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'silver_client3'::regnamespace ORDER BY 1"
    ).fetchall()
    # the helpers are in the schema shared, once; the client's own are its ERP keys (V008, V009)
    assert functions == [("erp_cust_az12_cid",), ("erp_loc_a101_cid",)]
