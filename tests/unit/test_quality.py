"""Quality gates in the client config: typed, validated identifiers, defaults in one place;
and the checks built from them: quoted identifiers, bound batch id, one-line verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from include.etl.config import CLIENTS_DIR, DEFAULTS_FILE, load_client
from include.etl.warehouse.quality import checks_for
from tests.unit.test_config import load_error, minimal, write

QUALITY = {
    "keys": [
        {"table": "silver.customers", "columns": ["customer_id"]},
        {"table": "gold.fact_signups", "columns": ["customer_id", "signup"], "unique": False},
    ],
    "joins": [{"table": "gold.fact_signups", "column": "customer_key", "dimension": "dim_customers"}],
    "row_counts": ["silver.customers"],
}


@pytest.fixture
def clients_dir(tmp_path: Path) -> Path:
    """A clients folder holding a copy of the real _defaults.yaml (its quality defaults)."""
    folder = tmp_path / "clients"
    folder.mkdir()
    shutil.copy(CLIENTS_DIR / DEFAULTS_FILE, folder / DEFAULTS_FILE)
    return folder


def with_quality(quality: dict) -> dict:
    data = minimal("acme")
    data["quality"] = quality
    return data


def test_checks_come_from_the_config_and_the_default_drop(clients_dir: Path) -> None:
    cfg = load_client(write(clients_dir, "acme", with_quality(QUALITY)))

    assert cfg.quality.max_row_drop == 0.5  # from _defaults.yaml
    silver = [(c.table, c.label) for c in checks_for(cfg, "silver")]
    gold = [(c.table, c.label) for c in checks_for(cfg, "gold")]
    assert silver == [
        ("silver_acme.customers", "not_null(customer_id)"),
        ("silver_acme.customers", "unique(customer_id)"),
        ("silver_acme.customers", "row_count"),
    ]
    assert gold == [
        ("gold_acme.fact_signups", "not_null(customer_id, signup)"),
        ("gold_acme.fact_signups", "joins dim_customers(customer_key)"),
    ]


def test_identifiers_are_quoted_and_the_batch_id_is_bound(clients_dir: Path) -> None:
    cfg = load_client(write(clients_dir, "acme", with_quality(QUALITY)))
    not_null, unique, row_count = checks_for(cfg, "silver")
    _, joins = checks_for(cfg, "gold")

    assert not_null.sql.endswith(
        'SELECT count(*) FILTER (WHERE "customer_id" IS NULL), count(*), (SELECT yes FROM enforced) '
        'FROM "silver_acme"."customers" WHERE dwh_batch_id = %(batch_id)s AND NOT (SELECT yes FROM enforced)'
    )
    assert "a.attrelid = '\"silver_acme\".\"customers\"'::regclass AND a.attname IN ('customer_id')" in (
        not_null.sql
    )
    assert 'GROUP BY "customer_id" HAVING count(*) > 1' in unique.sql
    assert "client_schema = %(client)s" in row_count.sql and "BATCH" not in row_count.sql
    assert joins.sql.endswith('"gold_acme"."fact_signups" AS f WHERE f."customer_key" IS NOT NULL)')
    assert 'FROM "gold_acme"."dim_customers" AS d WHERE d."customer_key" = f."customer_key"' in joins.sql


@pytest.mark.parametrize(
    ("quality", "field", "message"),
    [
        (
            {"keys": [{"table": "silver.customer", "columns": ["x"]}]},
            "quality.keys[silver.customer]",
            "not a table written",
        ),
        (
            {"keys": [{"table": "bronze.customers", "columns": ["x"]}]},
            "quality.keys[bronze.customers].table",
            "pattern",
        ),
        (
            {"keys": [{"table": 'gold.x"; drop table y; --', "columns": ["x"]}]},
            'quality.keys[gold.x"; drop table y; --].table',
            "",
        ),
        (
            {"keys": [{"table": "silver.customers", "columns": ["a b"]}]},
            "quality.keys[silver.customers].columns[a b]",
            "",
        ),
        (
            {"keys": [{"table": "silver.customers", "columns": []}]},
            "quality.keys[silver.customers].columns",
            "",
        ),
        (
            {"joins": [{"table": "silver.customers", "column": "k", "dimension": "dim_customers"}]},
            "quality.joins[silver.customers.k]",
            "joins are checked on gold facts",
        ),
        (
            {"joins": [{"table": "gold.fact_signups", "column": "k", "dimension": "dim_nope"}]},
            "quality.joins[gold.fact_signups.k].dimension",
            "gold.dim_nope is not a table written",
        ),
        (
            {"row_counts": ["gold.fact_signups"]},
            "quality.row_counts[gold.fact_signups]",
            "compared on silver tables",
        ),
        ({"max_row_drop": 1.5}, "quality.max_row_drop", "less than 1"),
        ({"keys": [], "typo": 1}, "quality.typo", "Extra inputs"),
    ],
    ids=[
        "unknown-table",
        "bronze",
        "injection",
        "column",
        "no-columns",
        "join-on-silver",
        "unknown-dimension",
        "row-count-on-gold",
        "drop-over-1",
        "unknown-key",
    ],
)
def test_a_bad_quality_config_names_the_file_and_the_field(
    clients_dir: Path, quality: dict, field: str, message: str
) -> None:
    error = load_error(clients_dir, "acme", with_quality(quality))

    assert error.startswith("acme.yaml: ")
    assert field in error and message in error


def test_verdicts_are_one_line_with_the_numbers(clients_dir: Path) -> None:
    cfg = load_client(write(clients_dir, "acme", with_quality(QUALITY)))
    not_null, unique, row_count = checks_for(cfg, "silver")
    gold_not_null, joins = checks_for(cfg, "gold")
    batch = "BATCH000002"

    assert not_null.verdict((0, 10), batch) is None
    assert not_null.verdict((2, 1250), batch) == (
        "silver_acme.customers not_null(customer_id): 2 of 1,250 rows of BATCH000002 have a NULL key"
    )
    assert unique.verdict((1, 2), batch) == (
        "silver_acme.customers unique(customer_id): 1 key value(s) held by more than one row (2 rows) "
        "of BATCH000002"
    )
    assert gold_not_null.verdict((1, 5), batch) == (
        "gold_acme.fact_signups not_null(customer_id, signup): 1 of 5 rows have a NULL key"
    )
    assert joins.verdict((3, 40), batch) == (
        "gold_acme.fact_signups joins dim_customers(customer_key): 3 of 40 rows "
        "have a key missing from gold_acme.dim_customers.customer_key"
    )
    assert row_count.verdict((10, 0, None), batch) is None  # the first batch
    assert row_count.verdict((50, 100, "BATCH000001"), batch) is None  # exactly the limit
    assert row_count.verdict((49, 100, "BATCH000001"), batch) == (
        "silver_acme.customers row_count: 49 rows in BATCH000002, 51% fewer than the 100 "
        "of BATCH000001 (at most 50% allowed)"
    )
