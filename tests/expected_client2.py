"""Expected row counts for a client2 file set, computed from the files themselves.

Independent of the generator (``demo.client2`` is not imported): the files are
read with csv / json / python-calamine as the runtime contract describes, every row is
checked against the column rules of ``include/clients/client2.yaml``, and the silver /
gold rules of ``sql/clients/client2`` are applied to the natural keys:

* invoices: key ``upper(trim(invoice_no))``, one gold row per key;
* plans: key ``upper(trim(plan_code))``;
* accounts: key ``upper(trim(account_id))``;
* usage events: key ``lower(trim(event_id))``.

(``trim`` is PostgreSQL's ``btrim``: spaces only.)

Files are looked for in ``<incoming_root>/<system>/`` (as generated) and in
``<incoming_root>/<system>/incoming/`` (as delivered). A missing file counts as an empty
one (the plan list is optional). The counts describe one batch loaded into an empty
warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

from python_calamine import CalamineWorkbook

from include.etl.config import CLIENTS_DIR, ClientConfig, Column, SourceFile, load_client

_INTEGER = re.compile(r"[+-]?\d+")
_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_BOOLEAN = {"true", "false", "t", "f", "1", "0", "yes", "no"}

# logical file -> (gold table, natural key column, normalisation of the key)
_GOLD_KEYS = {
    "invoices": ("fact_invoices", "invoice_no", str.upper),
    "plans": ("dim_plans", "plan_code", str.upper),
    "accounts": ("dim_accounts", "account_id", str.upper),
    "usage_events": ("fact_usage_events", "event_id", str.lower),
}


def config() -> ClientConfig:
    return load_client(CLIENTS_DIR / "client2.yaml")


def expected_counts(incoming_root: Path) -> dict[str, int]:
    """``bronze.<table>`` per file, ``rejected`` in total, ``gold.<table>`` per gold table."""
    cfg = config()
    counts: dict[str, int] = {}
    rejected = 0
    for system, spec in cfg.files:
        # <root>/<system>/ as generated, or <root>/<system>/incoming/ once delivered
        folders = [Path(incoming_root) / system.name, Path(incoming_root) / system.name / "incoming"]
        files = sorted(
            p for folder in folders for p in folder.glob("*") if p.is_file() and spec.matches(p.name)
        )
        valid: list[dict[str, str | None]] = []
        for path in files:
            for record in read_records(path, spec):
                if row_is_valid(record, spec.columns):
                    valid.append(record)
                else:
                    rejected += 1
        counts[f"bronze.{spec.bronze_table}"] = len(valid)
        gold_table, key, normalise = _GOLD_KEYS[spec.name]
        source = next(c.source for c in spec.columns if c.name == key)
        keys = {normalise(r[source].strip(" ")) for r in valid if r[source] and r[source].strip(" ")}
        counts[f"gold.{gold_table}"] = len(keys)
    counts["rejected"] = rejected
    return counts


# ---------------------------------------------------------------- reading
def read_records(path: Path, spec: SourceFile) -> list[dict[str, str | None]]:
    """The rows of one file as {source column: text or None}."""
    if spec.type == "csv":
        with path.open(encoding=spec.reader.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=spec.reader.delimiter)
            header = next(reader)
            return [
                {h: (v if v != "" else None) for h, v in zip(header, row, strict=False)} for row in reader
            ]
    if spec.type == "xlsx":
        book = CalamineWorkbook.from_path(str(path))
        sheet = book.get_sheet_by_name(spec.reader.sheet) if spec.reader.sheet else book.get_sheet_by_index(0)
        rows = sheet.to_python(skip_empty_area=False)
        header = [str(h).strip() for h in rows[spec.reader.header_row - 1]]
        return [
            {h: _cell_text(v) for h, v in zip(header, row, strict=False) if h}
            for row in rows[spec.reader.header_row :]
            if any(v not in (None, "") for v in row)
        ]
    text = path.read_text(encoding=spec.reader.encoding)
    mode = spec.reader.json_records
    if mode == "auto":
        mode = "array" if text.lstrip().startswith("[") else "lines"
    objects = (
        json.loads(text)
        if mode == "array"
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return [{k: _json_text(v) for k, v in obj.items()} for obj in objects]


def _cell_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# ---------------------------------------------------------------- validation
def row_is_valid(record: dict[str, str | None], columns: list[Column]) -> bool:
    return all(value_is_valid(record.get(c.source), c) for c in columns)


def value_is_valid(raw: str | None, column: Column) -> bool:
    if column.type == "text":
        return not (column.required and (raw is None or raw.strip() == ""))
    value = raw.strip() if raw is not None else ""
    if value == "":
        return not column.required
    if column.type == "integer":
        return _INTEGER.fullmatch(value) is not None
    if column.type == "numeric":
        return _NUMERIC.fullmatch(value) is not None
    if column.type == "boolean":
        return value.lower() in _BOOLEAN
    if column.type == "date":
        if column.format:
            return _parses(value, column.format)
        return _DATE.fullmatch(value) is not None and _parses(value, "%Y-%m-%d")
    if column.type == "timestamp":
        if column.format:
            return _parses(value, column.format)
        return _TIMESTAMP.fullmatch(value) is not None and _parses(
            value.replace("T", " "), "%Y-%m-%d %H:%M:%S"
        )
    raise ValueError(f"unknown column type {column.type}")


def _parses(value: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True
