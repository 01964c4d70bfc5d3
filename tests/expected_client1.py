"""Expected row counts for a client1 file set, computed from the files themselves.

Independent of the generator (``demo.client1`` is not imported) and of the SQL:
the CSV files are read with the ``csv`` module, every row is checked against the column
rules of ``include/clients/client1.yaml`` the way the runtime validates them, and the
documented silver / gold rules are applied to the natural keys:

* ``gold.dim_customers``: one row per valid customer id (``cst_id`` as a number);
* ``gold.dim_products``: one row per current product number; every product key with a
  valid row has exactly one current row (the one without a successor), so this is the
  number of distinct product numbers (``prd_key`` from its seventh character);
* ``gold.fact_sales``: one row per distinct valid (order number, product number).

Keys are trimmed as the SQL does (PostgreSQL ``btrim`` of spaces, tabs, line breaks).
Every file of a logical name in the folder counts (``cust_info.csv`` and
``cust_info_20260101.csv`` alike); the gold counts are those of loading them all into
an empty warehouse. ``expected_keys`` returns the key sets themselves, so the counts of
several file sets loaded one after the other are the sizes of the unions.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

from include.etl.config import CLIENTS_DIR, ClientConfig, Column, SourceFile, load_client

# The runtime's value rules (include/validation.py): trimmed, empty means NULL.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_NUMERIC = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SQL_TRIM = " \t\r\n"  # what silver_client1.clean_text trims


def config() -> ClientConfig:
    return load_client(CLIENTS_DIR / "client1.yaml")


def expected_counts(incoming_root: Path) -> dict[str, int]:
    """``bronze.<table>`` per file, ``rejected`` in total, ``gold.<table>`` per gold table."""
    keys = expected_keys(incoming_root)
    counts = {name: value for name, value in keys.items() if isinstance(value, int)}
    for name in ("gold.dim_customers", "gold.dim_products", "gold.fact_sales"):
        counts[name] = len(keys[name])
    return counts


def expected_keys(incoming_root: Path) -> dict[str, int | set]:
    """Bronze and reject counts (ints) and the gold natural keys (sets) of a file set."""
    cfg = config()
    result: dict[str, int | set] = {}
    rejected = 0
    valid_rows: dict[str, list[dict[str, str]]] = {}
    for system, spec in cfg.files:
        folder = Path(incoming_root) / system.name
        files = sorted(p for p in folder.glob("*") if p.is_file() and spec.matches(p.name))
        valid: list[dict[str, str]] = []
        for path in files:
            for record in read_records(path, spec):
                if row_is_valid(record, spec.columns):
                    valid.append(record)
                else:
                    rejected += 1
        result[f"bronze.{spec.bronze_table}"] = len(valid)
        valid_rows[spec.name] = valid
    result["rejected"] = rejected

    result["gold.dim_customers"] = {int(r["cst_id"].strip()) for r in valid_rows["cust_info"]}
    result["gold.dim_products"] = {
        number for r in valid_rows["prd_info"] if (number := r["prd_key"].strip(_SQL_TRIM)[6:])
    }
    result["gold.fact_sales"] = {
        (r["sls_ord_num"].strip(_SQL_TRIM), r["sls_prd_key"].strip(_SQL_TRIM))
        for r in valid_rows["sales_details"]
    }
    return result


def read_records(path: Path, spec: SourceFile) -> list[dict[str, str]]:
    """The data rows of one CSV file as {source column: text}."""
    with path.open(encoding=spec.reader.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=spec.reader.delimiter)
        header = next(reader)
        return [dict(zip(header, row, strict=True)) for row in reader]


def value_is_valid(value: str | None, column: Column) -> bool:
    """One value against its column's type and ``required`` rule."""
    if column.type == "text":
        return not column.required or bool(value and value.strip())
    value = (value or "").strip()
    if not value:
        return not column.required
    if column.type == "integer":
        return _INTEGER.fullmatch(value) is not None
    if column.type == "numeric":
        return _NUMERIC.fullmatch(value) is not None
    if column.type == "date":
        if not _DATE.fullmatch(value):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    raise NotImplementedError(f"client1 has no {column.type} columns")


def row_is_valid(record: dict[str, str], columns: list[Column]) -> bool:
    return all(value_is_valid(record.get(c.source), c) for c in columns)
