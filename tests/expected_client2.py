"""What gold should hold for a client2 file set, computed from the files themselves.

An oracle for the end-to-end test, independent of the generator (``demo.client2``
is not imported) and of the SQL (none of ``sql/templates/saas_billing`` is run): the files are
read with csv / json / python-calamine as the runtime contract describes, every row is
checked and typed by the value rules of ``include/validation.py`` for the columns of
``include/clients/client2.yaml``, and the documented silver / gold rules of
``sql/templates/saas_billing`` are re-implemented here in Python, one function per table.

* ``expected_counts``: rows per bronze table, rejected rows, rows per gold table.
* ``expected_values``: the gold figures an analyst reads, after loading the file set as
  one batch into an empty warehouse. ``gold_values`` reads the same figures from the
  warehouse (``gold_client2`` tables and materialized views, nothing else), so the two
  compare with ``==``. The figures, in this order (summaries first, so a failure names
  a readable one):

  - invoices: rows, billed total (void excluded) and billed per (month, currency), paid
    and outstanding amounts, amount and count per status, count per currency, NULL
    seats, blank plan codes, invoices whose account or plan is not in the dimension;
  - accounts: rows, count per segment and per country code; plans: rows;
  - usage events: rows, count per type and per account, ``api_call`` quantity in total
    and per account, events whose account is not in the dimension;
  - ``mv_monthly_revenue`` and ``mv_account_usage_summary`` whole, and every business
    column of ``dim_accounts``, ``dim_plans``, ``fact_invoices`` and
    ``fact_usage_events``: one figure per column, ``<table>.<column>``, a dict from the
    row's natural key to the value. A fact's surrogate keys are given as the natural key
    of the dimension row they point at (``dim_account_id``, ``dim_plan_code``; None when
    unresolved); the usage summary is keyed by ``account_id``, not ``account_key``.

Values are int, Decimal, str, bool, None, ``datetime.date`` / ``datetime.datetime`` and
dicts of them. Gold does not record which invoices got the default currency or had their
seats NULLed for being out of range, so those rules show in the count per currency and
the NULL seats count (and in ``fact_invoices.currency`` / ``.seats``).

A row reaches bronze when every value types (``row_is_valid``, ``typed_value``), as
``include/validation.py`` types it: text as delivered; other types trimmed, empty is NULL,
integers of at most 18 digits, numbers exact (``Decimal``), booleans true/t/1/yes or
false/f/0/no, dates and timestamps in the column's format (or ISO) that print back the
same. XLSX cells and JSON values become text as ``include/convert.py`` writes them.

The rules, as the SQL's header comments state them (``trim`` is PostgreSQL's ``btrim``:
spaces only; ``round`` is half away from zero):

* every silver table: one row per natural key, the last delivered row wins (latest file
  name, then highest row number); a row whose key is blank is dropped;
* invoices: key ``upper(trim(invoice_no))``; account id trimmed and upper-cased; plan code
  upper-cased, blank -> NULL; currency upper-cased, blank -> ``USD``; status lower-cased
  onto paid | open | overdue | void, anything else ``unknown``; seats outside
  0..1,000,000 -> NULL, else rounded to an integer; amount rounded to 2 places;
* plans: key ``upper(trim(plan_code))``; name trimmed; tier and billing period
  lower-cased, blank -> NULL; price rounded to 2 places;
* accounts: key ``upper(trim(account_id))``; company name trimmed; country code
  upper-cased, blank -> NULL; segment lower-cased, spaces as ``-``, onto SMB |
  Mid-Market (``mid-market``, ``midmarket``) | Enterprise, anything else ``Unknown``;
* usage events: key ``lower(trim(event_id))``; account id upper-cased; type lower-cased,
  blank -> ``unknown``; feature lower-cased, blank -> NULL; quantity 1 when not
  delivered; the event date is the timestamp's day;
* gold: the dimensions are the silver rows; a fact points at the dimension row of its
  account id / plan code when there is one;
* ``mv_monthly_revenue``: non-void invoices per (month, plan code of the plan row, else of
  the invoice, else ``UNKNOWN``, currency); ``mv_account_usage_summary``: every account
  with its resolved events and its resolved non-void invoices.

Files are looked for in ``<incoming_root>/<system>/`` (as generated) and in
``<incoming_root>/<system>/incoming/`` (as delivered). A missing file counts as an empty
one (the plan list is optional).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from python_calamine import CalamineWorkbook

from include.etl.config import CLIENTS_DIR, ClientConfig, Column, SourceFile, load_client

Record = dict[str, str | None]  # a delivered row: source column -> text as delivered, None when empty
Row = dict[str, object]  # a typed row: column (target name) -> value
Table = dict[object, Row]  # natural key -> the row's other columns

# The runtime's value rules (include/validation.py): typed values trimmed, empty means NULL.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_NUMERIC = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_BOOLEAN = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
}
_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")  # ISO, a space or a T between date and time

# logical file -> (gold table, natural key column, normalisation of the key)
_GOLD_KEYS = {
    "invoices": ("fact_invoices", "invoice_no", str.upper),
    "plans": ("dim_plans", "plan_code", str.upper),
    "accounts": ("dim_accounts", "account_id", str.upper),
    "usage_events": ("fact_usage_events", "event_id", str.lower),
}

# The business columns compared whole, per table (the natural key is the dict key).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "mv_monthly_revenue": (
        "tier",
        "invoice_count",
        "billed_accounts",
        "seats",
        "billed_amount",
        "paid_amount",
        "outstanding_amount",
    ),
    "mv_account_usage_summary": (
        "company_name",
        "segment",
        "country_code",
        "is_active",
        "event_count",
        "api_calls",
        "active_days",
        "first_event_at",
        "last_event_at",
        "invoice_count",
        "billed_amount",
        "outstanding_amount",
        "last_invoice_date",
    ),
    "dim_accounts": ("company_name", "country_code", "segment", "signup_date", "is_active"),
    "dim_plans": ("plan_name", "tier", "monthly_price", "billing_period", "is_active"),
    "fact_invoices": (
        "account_id",
        "plan_code",
        "dim_account_id",
        "dim_plan_code",
        "invoice_date",
        "due_date",
        "seats",
        "amount",
        "currency",
        "status",
        "auto_renew",
    ),
    "fact_usage_events": (
        "account_id",
        "dim_account_id",
        "event_type",
        "event_ts",
        "event_date",
        "quantity",
        "feature",
    ),
}

STATUSES = ("paid", "open", "overdue", "void")  # anything else is 'unknown'
OUTSTANDING = ("open", "overdue")
DEFAULT_CURRENCY = "USD"
SEATS_RANGE = (0, 1_000_000)  # seats outside it are NULL
SEGMENTS = {"smb": "SMB", "mid-market": "Mid-Market", "midmarket": "Mid-Market", "enterprise": "Enterprise"}
UNKNOWN_PLAN = "UNKNOWN"  # mv_monthly_revenue's plan code for invoices without one
CENT = Decimal("0.01")


def config() -> ClientConfig:
    return load_client(CLIENTS_DIR / "client2.yaml")


# ================================================================ counts
def expected_counts(incoming_root: Path) -> dict[str, int]:
    """``bronze.<table>`` per file, ``rejected`` in total, ``gold.<table>`` per gold table."""
    cfg = config()
    counts: dict[str, int] = {}
    rejected = 0
    for system, spec in cfg.files:
        valid: list[Record] = []
        for path in delivered_files(incoming_root, system.name, spec):
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


def delivered_files(incoming_root: Path, system: str, spec: SourceFile) -> list[Path]:
    """The files of one logical file, in delivery order: by file name (as ``dwh_source_file``
    sorts), in ``<root>/<system>/`` as generated or ``<root>/<system>/incoming/`` once delivered."""
    folders = [Path(incoming_root) / system, Path(incoming_root) / system / "incoming"]
    found = [p for folder in folders for p in folder.glob("*") if p.is_file() and spec.matches(p.name)]
    return sorted(found, key=lambda p: (p.name, str(p)))


# ================================================================ values: from the files
@dataclass
class Gold:
    """Gold as natural key -> row, one ``Table`` per table and materialized view."""

    dim_accounts: Table
    dim_plans: Table
    fact_invoices: Table
    fact_usage_events: Table
    mv_monthly_revenue: Table  # key (revenue_month, plan_code, currency)
    mv_account_usage_summary: Table  # key account_id


def expected_values(incoming_root: Path) -> dict[str, object]:
    """The figures gold should hold after loading this file set as one batch into an empty
    warehouse, computed from the files alone."""
    bronze = expected_bronze(incoming_root)
    gold = expected_gold(bronze)
    return _summary(gold) | _whole(gold)


def expected_bronze(incoming_root: Path) -> dict[str, list[Row]]:
    """Per logical file, the rows validation accepts, typed as bronze stores them, in
    delivery order (file name, then row: so "the last delivered row" is the last one)."""
    cfg = config()
    bronze: dict[str, list[Row]] = {}
    for system, spec in cfg.files:
        rows: list[Row] = []
        for path in delivered_files(incoming_root, system.name, spec):
            for record in read_records(path, spec):
                if row_is_valid(record, spec.columns):  # rejected rows never reach bronze
                    rows.append({c.name: typed_value(record.get(c.source), c) for c in spec.columns})
        bronze[spec.name] = rows
    return bronze


def expected_gold(bronze: dict[str, list[Row]]) -> Gold:
    """Silver, then gold, of one batch loaded into an empty warehouse."""
    dim_accounts = silver_accounts(bronze["accounts"])  # gold dimensions: the batch's silver rows
    dim_plans = silver_plans(bronze["plans"])
    fact_invoices = {
        invoice_no: {
            **row,
            "dim_account_id": row["account_id"] if row["account_id"] in dim_accounts else None,
            "dim_plan_code": row["plan_code"] if row["plan_code"] in dim_plans else None,
        }
        for invoice_no, row in silver_invoices(bronze["invoices"]).items()
    }
    fact_usage_events = {
        event_id: {**row, "dim_account_id": row["account_id"] if row["account_id"] in dim_accounts else None}
        for event_id, row in silver_usage_events(bronze["usage_events"]).items()
    }
    return Gold(
        dim_accounts=dim_accounts,
        dim_plans=dim_plans,
        fact_invoices=fact_invoices,
        fact_usage_events=fact_usage_events,
        mv_monthly_revenue=monthly_revenue(fact_invoices, dim_plans),
        mv_account_usage_summary=account_usage_summary(dim_accounts, fact_invoices, fact_usage_events),
    )


# ---------------------------------------------------------------- silver rules
def _trim(value: str | None) -> str | None:
    """PostgreSQL ``btrim(value)``: spaces only."""
    return None if value is None else value.strip(" ")


def _blank_null(value: str | None) -> str | None:
    """``nullif(value, '')``."""
    return value or None


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _round(value: Decimal | None, places: Decimal) -> Decimal | None:
    """PostgreSQL ``round(numeric, n)``: half away from zero."""
    return None if value is None else value.quantize(places, rounding=ROUND_HALF_UP)


def _last_wins(rows: Iterable[tuple[object, Row]]) -> Table:
    """One row per key, the last delivered one (``DISTINCT ON (key) ... ORDER BY key,
    dwh_source_file DESC, dwh_row_number DESC``): rows come in delivery order."""
    table: Table = {}
    for key, row in rows:
        table[key] = row
    return table


def silver_invoices(bronze: list[Row]) -> Table:
    """silver_client2.billing_invoices by invoice_no (saas_billing/silver/billing_invoices.sql)."""

    def clean(b: Row) -> tuple[object, Row] | None:
        invoice_no, account_id = _trim(b["invoice_no"]), _trim(b["account_id"])
        if not invoice_no or not account_id or b["invoice_date"] is None or b["amount"] is None:
            return None
        seats = b["seats"]
        status = _lower(_trim(b["status"]))
        return invoice_no.upper(), {
            "account_id": account_id.upper(),
            "plan_code": _blank_null(_upper(_trim(b["plan_code"]))),
            "invoice_date": b["invoice_date"],
            "due_date": b["due_date"],
            "seats": (
                int(_round(seats, Decimal(1)))
                if seats is not None and SEATS_RANGE[0] <= seats <= SEATS_RANGE[1]
                else None
            ),
            "amount": _round(b["amount"], CENT),
            "currency": _blank_null(_upper(_trim(b["currency"]))) or DEFAULT_CURRENCY,
            "status": status if status in STATUSES else "unknown",
            "auto_renew": b["auto_renew"],
        }

    return _last_wins(row for row in map(clean, bronze) if row is not None)


def silver_plans(bronze: list[Row]) -> Table:
    """silver_client2.billing_plans by plan_code (sql/templates/saas_billing/silver/billing_plans.sql)."""

    def clean(b: Row) -> tuple[object, Row] | None:
        plan_code = _trim(b["plan_code"])
        if not plan_code:
            return None
        return plan_code.upper(), {
            "plan_name": _blank_null(_trim(b["plan_name"])),
            "tier": _blank_null(_lower(_trim(b["tier"]))),
            "monthly_price": _round(b["monthly_price"], CENT),
            "billing_period": _blank_null(_lower(_trim(b["billing_period"]))),
            "is_active": b["is_active"],
        }

    return _last_wins(row for row in map(clean, bronze) if row is not None)


def silver_accounts(bronze: list[Row]) -> Table:
    """silver_client2.app_accounts by account_id (sql/templates/saas_billing/silver/app_accounts.sql)."""

    def clean(b: Row) -> tuple[object, Row] | None:
        account_id = _trim(b["account_id"])
        if not account_id:
            return None
        segment = _lower(_trim(b["segment"]))
        return account_id.upper(), {
            "company_name": _blank_null(_trim(b["company_name"])),
            "country_code": _blank_null(_upper(_trim(b["country_code"]))),
            "segment": SEGMENTS.get(segment.replace(" ", "-"), "Unknown")
            if segment is not None
            else "Unknown",
            "signup_date": b["signup_date"],
            "is_active": b["is_active"],
        }

    return _last_wins(row for row in map(clean, bronze) if row is not None)


def silver_usage_events(bronze: list[Row]) -> Table:
    """silver_client2.app_usage_events by event_id (saas_billing/silver/app_usage_events.sql)."""

    def clean(b: Row) -> tuple[object, Row] | None:
        event_id, account_id, event_ts = _trim(b["event_id"]), _trim(b["account_id"]), b["event_ts"]
        if not event_id or not account_id or event_ts is None:
            return None
        assert isinstance(event_ts, dt.datetime)
        return event_id.lower(), {
            "account_id": account_id.upper(),
            "event_type": _blank_null(_lower(_trim(b["event_type"]))) or "unknown",
            "event_ts": event_ts,
            "event_date": event_ts.date(),
            "quantity": 1 if b["quantity"] is None else b["quantity"],
            "feature": _blank_null(_lower(_trim(b["feature"]))),
        }

    return _last_wins(row for row in map(clean, bronze) if row is not None)


# ---------------------------------------------------------------- materialized views
def _sum(values: Iterable[object]) -> object:
    """SQL ``sum``: NULLs ignored, NULL when nothing is left."""
    present = [v for v in values if v is not None]
    return sum(present[1:], present[0]) if present else None


def _sum_or_zero(values: Iterable[Decimal | None]) -> Decimal:
    """``coalesce(sum(...), 0)``."""
    total = _sum(values)
    return Decimal(0) if total is None else total


def monthly_revenue(fact_invoices: Table, dim_plans: Table) -> Table:
    """gold_client2.mv_monthly_revenue: non-void invoices per (month, plan code, currency)."""
    groups: dict[tuple[dt.date, str, str], list[Row]] = defaultdict(list)
    for row in fact_invoices.values():
        if row["status"] == "void":
            continue
        month = row["invoice_date"].replace(day=1)
        plan_code = row["dim_plan_code"] or row["plan_code"] or UNKNOWN_PLAN
        groups[(month, plan_code, row["currency"])].append(row)
    view: Table = {}
    for key, rows in groups.items():
        tiers = [dim_plans[r["dim_plan_code"]]["tier"] for r in rows if r["dim_plan_code"] is not None]
        view[key] = {
            "tier": max((t for t in tiers if t is not None), default=None),
            "invoice_count": len(rows),
            "billed_accounts": len({r["account_id"] for r in rows}),
            "seats": _sum(r["seats"] for r in rows),
            "billed_amount": _sum(r["amount"] for r in rows),
            "paid_amount": _sum_or_zero(r["amount"] for r in rows if r["status"] == "paid"),
            "outstanding_amount": _sum_or_zero(r["amount"] for r in rows if r["status"] in OUTSTANDING),
        }
    return view


def account_usage_summary(dim_accounts: Table, fact_invoices: Table, fact_usage_events: Table) -> Table:
    """gold_client2.mv_account_usage_summary: every account, its events and its non-void
    invoices (those resolved to the account), by account_id."""
    events: dict[object, list[Row]] = defaultdict(list)
    for row in fact_usage_events.values():
        if row["dim_account_id"] is not None:
            events[row["dim_account_id"]].append(row)
    invoices: dict[object, list[Row]] = defaultdict(list)
    for row in fact_invoices.values():
        if row["dim_account_id"] is not None and row["status"] != "void":
            invoices[row["dim_account_id"]].append(row)
    view: Table = {}
    for account_id, account in dim_accounts.items():
        used, billed = events.get(account_id, []), invoices.get(account_id, [])
        view[account_id] = {
            "company_name": account["company_name"],
            "segment": account["segment"],
            "country_code": account["country_code"],
            "is_active": account["is_active"],
            "event_count": len(used),
            "api_calls": sum(r["quantity"] for r in used if r["event_type"] == "api_call"),
            "active_days": len({r["event_date"] for r in used}),
            "first_event_at": min((r["event_ts"] for r in used), default=None),
            "last_event_at": max((r["event_ts"] for r in used), default=None),
            "invoice_count": len(billed),
            "billed_amount": _sum_or_zero(r["amount"] for r in billed),
            "outstanding_amount": _sum_or_zero(r["amount"] for r in billed if r["status"] in OUTSTANDING),
            "last_invoice_date": max((r["invoice_date"] for r in billed), default=None),
        }
    return view


# ---------------------------------------------------------------- figures
def _summary(gold: Gold) -> dict[str, object]:
    """The analyst's summary figures, computed from the expected gold tables."""
    invoices = list(gold.fact_invoices.values())
    billed = [r for r in invoices if r["status"] != "void"]
    events = list(gold.fact_usage_events.values())
    api_calls = [r for r in events if r["event_type"] == "api_call"]
    billed_by_month_currency: dict[object, Decimal] = defaultdict(Decimal)
    for r in billed:
        billed_by_month_currency[(r["invoice_date"].replace(day=1), r["currency"])] += r["amount"]
    amount_by_status: dict[object, Decimal] = defaultdict(Decimal)
    for r in invoices:
        amount_by_status[r["status"]] += r["amount"]
    api_calls_by_account: dict[object, int] = defaultdict(int)
    for r in api_calls:
        api_calls_by_account[r["account_id"]] += r["quantity"]
    return {
        "fact_invoices.rows": len(invoices),
        "fact_invoices.billed_total": sum((r["amount"] for r in billed), Decimal(0)),
        "fact_invoices.billed_by_month_currency": dict(billed_by_month_currency),
        "fact_invoices.paid_amount": sum(
            (r["amount"] for r in invoices if r["status"] == "paid"), Decimal(0)
        ),
        "fact_invoices.outstanding_amount": sum(
            (r["amount"] for r in invoices if r["status"] in OUTSTANDING), Decimal(0)
        ),
        "fact_invoices.amount_by_status": dict(amount_by_status),
        "fact_invoices.count_by_status": dict(Counter(r["status"] for r in invoices)),
        "fact_invoices.count_by_currency": dict(Counter(r["currency"] for r in invoices)),
        "fact_invoices.seats_null": sum(r["seats"] is None for r in invoices),
        "fact_invoices.plan_code_null": sum(r["plan_code"] is None for r in invoices),
        "fact_invoices.account_unresolved": sum(r["dim_account_id"] is None for r in invoices),
        "fact_invoices.plan_unresolved": sum(
            r["dim_plan_code"] is None and r["plan_code"] is not None for r in invoices
        ),
        "dim_accounts.rows": len(gold.dim_accounts),
        "dim_accounts.count_by_segment": dict(Counter(r["segment"] for r in gold.dim_accounts.values())),
        "dim_accounts.count_by_country_code": dict(
            Counter(r["country_code"] for r in gold.dim_accounts.values())
        ),
        "dim_plans.rows": len(gold.dim_plans),
        "fact_usage_events.rows": len(events),
        "fact_usage_events.count_by_type": dict(Counter(r["event_type"] for r in events)),
        "fact_usage_events.count_by_account": dict(Counter(r["account_id"] for r in events)),
        "fact_usage_events.api_call_quantity": sum(r["quantity"] for r in api_calls),
        "fact_usage_events.api_call_quantity_by_account": dict(api_calls_by_account),
        "fact_usage_events.account_unresolved": sum(r["dim_account_id"] is None for r in events),
    }


def _whole(gold: Gold) -> dict[str, object]:
    """Every business column of every gold table and view: ``<table>.<column>`` -> {key: value}."""
    figures: dict[str, object] = {}
    for table, columns in _COLUMNS.items():
        rows: Table = getattr(gold, table)
        for column in columns:
            figures[f"{table}.{column}"] = {key: row[column] for key, row in rows.items()}
    return figures


# ================================================================ values: from the warehouse
_TABLE_QUERIES = {
    "dim_accounts": """
        SELECT account_id, company_name, country_code, segment, signup_date, is_active
        FROM gold_client2.dim_accounts""",
    "dim_plans": """
        SELECT plan_code, plan_name, tier, monthly_price, billing_period, is_active
        FROM gold_client2.dim_plans""",
    "fact_invoices": """
        SELECT f.invoice_no, f.account_id, f.plan_code, a.account_id AS dim_account_id,
               p.plan_code AS dim_plan_code, f.invoice_date, f.due_date, f.seats, f.amount,
               f.currency, f.status, f.auto_renew
        FROM gold_client2.fact_invoices f
        LEFT JOIN gold_client2.dim_accounts a ON a.account_key = f.account_key
        LEFT JOIN gold_client2.dim_plans p ON p.plan_key = f.plan_key""",
    "fact_usage_events": """
        SELECT e.event_id, e.account_id, a.account_id AS dim_account_id, e.event_type,
               e.event_ts, e.event_date, e.quantity, e.feature
        FROM gold_client2.fact_usage_events e
        LEFT JOIN gold_client2.dim_accounts a ON a.account_key = e.account_key""",
    "mv_monthly_revenue": """
        SELECT revenue_month, plan_code, currency, tier, invoice_count, billed_accounts, seats,
               billed_amount, paid_amount, outstanding_amount
        FROM gold_client2.mv_monthly_revenue""",
    "mv_account_usage_summary": """
        SELECT account_id, company_name, segment, country_code, is_active, event_count, api_calls,
               active_days, first_event_at, last_event_at, invoice_count, billed_amount,
               outstanding_amount, last_invoice_date
        FROM gold_client2.mv_account_usage_summary""",
}
_KEY_WIDTH = {"mv_monthly_revenue": 3}  # (revenue_month, plan_code, currency); else the first column

# The summary figures as an analyst queries them: one value, or a {key: value} dict.
_SCALARS = {
    "fact_invoices.rows": "SELECT count(*) FROM gold_client2.fact_invoices",
    "fact_invoices.billed_total": (
        "SELECT coalesce(sum(amount), 0) FROM gold_client2.fact_invoices WHERE status <> 'void'"
    ),
    "fact_invoices.paid_amount": (
        "SELECT coalesce(sum(amount), 0) FROM gold_client2.fact_invoices WHERE status = 'paid'"
    ),
    "fact_invoices.outstanding_amount": (
        "SELECT coalesce(sum(amount), 0) FROM gold_client2.fact_invoices WHERE status IN ('open', 'overdue')"
    ),
    "fact_invoices.seats_null": "SELECT count(*) FROM gold_client2.fact_invoices WHERE seats IS NULL",
    "fact_invoices.plan_code_null": "SELECT count(*) FROM gold_client2.fact_invoices WHERE plan_code IS NULL",
    "fact_invoices.account_unresolved": (
        "SELECT count(*) FROM gold_client2.fact_invoices WHERE account_key IS NULL"
    ),
    "fact_invoices.plan_unresolved": (
        "SELECT count(*) FROM gold_client2.fact_invoices WHERE plan_key IS NULL AND plan_code IS NOT NULL"
    ),
    "dim_accounts.rows": "SELECT count(*) FROM gold_client2.dim_accounts",
    "dim_plans.rows": "SELECT count(*) FROM gold_client2.dim_plans",
    "fact_usage_events.rows": "SELECT count(*) FROM gold_client2.fact_usage_events",
    "fact_usage_events.api_call_quantity": (
        "SELECT coalesce(sum(quantity), 0)::bigint FROM gold_client2.fact_usage_events"
        " WHERE event_type = 'api_call'"
    ),
    "fact_usage_events.account_unresolved": (
        "SELECT count(*) FROM gold_client2.fact_usage_events WHERE account_key IS NULL"
    ),
}
_GROUPED = {  # the last column is the value, the ones before it the key
    "fact_invoices.billed_by_month_currency": """
        SELECT date_trunc('month', invoice_date)::date, currency, sum(amount)
        FROM gold_client2.fact_invoices WHERE status <> 'void' GROUP BY 1, 2""",
    "fact_invoices.amount_by_status": (
        "SELECT status, sum(amount) FROM gold_client2.fact_invoices GROUP BY status"
    ),
    "fact_invoices.count_by_status": (
        "SELECT status, count(*) FROM gold_client2.fact_invoices GROUP BY status"
    ),
    "fact_invoices.count_by_currency": (
        "SELECT currency, count(*) FROM gold_client2.fact_invoices GROUP BY currency"
    ),
    "dim_accounts.count_by_segment": "SELECT segment, count(*) FROM gold_client2.dim_accounts GROUP BY 1",
    "dim_accounts.count_by_country_code": (
        "SELECT country_code, count(*) FROM gold_client2.dim_accounts GROUP BY 1"
    ),
    "fact_usage_events.count_by_type": (
        "SELECT event_type, count(*) FROM gold_client2.fact_usage_events GROUP BY 1"
    ),
    "fact_usage_events.count_by_account": (
        "SELECT account_id, count(*) FROM gold_client2.fact_usage_events GROUP BY 1"
    ),
    "fact_usage_events.api_call_quantity_by_account": """
        SELECT account_id, sum(quantity)::bigint FROM gold_client2.fact_usage_events
        WHERE event_type = 'api_call' GROUP BY 1""",
}


def gold_values(conn: psycopg.Connection) -> dict[str, object]:
    """The same figures, read from the warehouse (gold_client2 tables and materialized views)."""
    summary: dict[str, object] = {}
    for name, query in _SCALARS.items():
        summary[name] = conn.execute(query).fetchone()[0]
    for name, query in _GROUPED.items():
        rows = conn.execute(query).fetchall()
        summary[name] = {(r[0] if len(r) == 2 else tuple(r[:-1])): r[-1] for r in rows}
    tables: dict[str, Table] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for table, query in _TABLE_QUERIES.items():
            width = _KEY_WIDTH.get(table, 1)
            tables[table] = {}
            for row in cur.execute(query).fetchall():
                names = list(row)
                key = row[names[0]] if width == 1 else tuple(row[n] for n in names[:width])
                tables[table][key] = {n: row[n] for n in names[width:]}
    return summary | _whole(Gold(**tables))


# ================================================================ reading
def read_records(path: Path, spec: SourceFile) -> list[Record]:
    """The rows of one file as {source column: text or None}, as conversion turns them
    into text (include/convert.py): CSV text as is, an empty value is None; XLSX cells and
    JSON values as ``_cell_text`` writes them."""
    if spec.type == "csv":
        with path.open(encoding=spec.reader.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=spec.reader.delimiter)
            header = next(reader)
            header[0] = header[0].removeprefix("\ufeff")
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
    text = path.read_text(encoding="utf-8-sig" if spec.reader.encoding == "utf-8" else spec.reader.encoding)
    mode = spec.reader.json_records
    if mode == "auto":
        mode = "array" if text.lstrip().startswith("[") else "lines"
    objects = (
        json.loads(text)
        if mode == "array"
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return [{k: _cell_text(v) for k, v in obj.items()} for obj in objects]


def _cell_text(value: object) -> str | None:
    """A cell or JSON value as the text a CSV would have carried (convert._text)."""
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
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ================================================================ validation and typing
class NotAccepted(ValueError):
    """A value row validation rejects (its row never reaches bronze)."""


def row_is_valid(record: Record, columns: list[Column]) -> bool:
    return all(value_is_valid(record.get(c.source), c) for c in columns)


def value_is_valid(raw: str | None, column: Column) -> bool:
    try:
        typed_value(raw, column)
    except NotAccepted:
        return False
    return True


def typed_value(raw: str | None, column: Column) -> object:
    """The value bronze stores for one delivered value (include/validation.py).

    Text is kept as delivered (a required one must not be blank). Typed values are
    trimmed, and empty means NULL; an integer has at most 18 digits; a boolean is one of
    true/t/1/yes or false/f/0/no in any case; a date or timestamp parses with the
    column's format (else ISO: ``YYYY-MM-DD``, ``YYYY-MM-DD[ T]HH:MM[:SS]``) and must
    print back the same (``2024-02-30`` and ``5.1.2024`` for ``%d.%m.%Y`` are refused).
    Raises ``NotAccepted`` for a value validation rejects.
    """
    if column.type == "text":
        if column.required and (raw is None or raw.strip() == ""):
            raise NotAccepted(f"{column.source}: required")
        return raw
    value = raw.strip() if raw is not None else ""
    if value == "":
        if column.required:
            raise NotAccepted(f"{column.source}: required")
        return None
    parse: dict[str, Callable[[str, Column], object]] = {
        "integer": _integer,
        "numeric": _numeric,
        "boolean": _boolean,
        "date": lambda v, c: _temporal(v, [c.format or "%Y-%m-%d"]).date(),
        "timestamp": lambda v, c: (
            _temporal(v, [c.format]) if c.format else _temporal(v.replace("T", " ", 1), _TIMESTAMP_FORMATS)
        ),
    }
    if column.type not in parse:
        raise ValueError(f"unknown column type {column.type}")
    return parse[column.type](value, column)


def _integer(value: str, column: Column) -> int:
    if _INTEGER.fullmatch(value) is None:
        raise NotAccepted(f"{column.source}: not an integer: {value!r}")
    return int(value)


def _numeric(value: str, column: Column) -> Decimal:
    if _NUMERIC.fullmatch(value) is None:
        raise NotAccepted(f"{column.source}: not a number: {value!r}")
    return Decimal(value)


def _boolean(value: str, column: Column) -> bool:
    if value.lower() not in _BOOLEAN:
        raise NotAccepted(f"{column.source}: not a boolean: {value!r}")
    return _BOOLEAN[value.lower()]


def _temporal(value: str, formats: Iterable[str]) -> dt.datetime:
    """The first format that parses ``value`` and prints it back unchanged."""
    for fmt in formats:
        try:
            parsed = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        if parsed.strftime(fmt) == value:
            return parsed
    raise NotAccepted(f"not a valid date or timestamp: {value!r}")
