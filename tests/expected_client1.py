"""What gold should hold for a client1 file set, computed from the files themselves.

An oracle for the end-to-end tests, independent of the generator (``demo.client1``
is not imported) and of the SQL (nothing of ``sql/templates/retail_crm_erp`` is run): the CSV files
are read with the ``csv`` module, every row is checked against the column rules of
``include/clients/client1.yaml`` the way the runtime validates them (a rejected row never
reaches bronze), typed as bronze stores it, and the documented silver / gold rules of
``sql/templates/retail_crm_erp`` are re-implemented here in Python, one function per table.

* ``expected_counts``: rows per bronze table, rejected rows in total, rows per gold table.
* ``expected_keys``: the same bronze and reject counts, and the gold natural keys as sets
  (so the counts of several file sets loaded one after the other are the sizes of the
  unions):

  - ``gold.dim_customers``: one row per valid customer id (``cst_id`` as a number);
  - ``gold.dim_products``: one row per current product number; every product key with a
    valid row has exactly one current row (the one without a successor), so this is the
    number of distinct product numbers (``prd_key`` from its seventh character);
  - ``gold.fact_sales``: one row per distinct valid (order number, product number).

* ``expected_values``: the figures an analyst reads in gold after loading the file set as
  one batch into an empty warehouse. ``gold_values`` reads the same figures from the
  warehouse, so the two compare with ``==``. In this order (headline figures first, so a
  failure names a readable one):

  - sales: ``fact_sales.sales_total`` and ``.sales_by_month`` (order month -> sum, None for
    lines without an order date); ``.sales_corrected`` (lines whose gold amount differs
    from the delivered ``sls_sales``) and ``.price_derived`` (lines whose gold price
    differs from the delivered ``sls_price``); ``.order_date_null``,
    ``.shipping_date_null``, ``.due_date_null``; lines whose customer / product is not in
    its dimension;
  - customers: ``dim_customers.with_birthdate`` (an ERP birth date joined and kept),
    ``.birthdate_future_nulled`` (the joined ERP birth date was in the future, gold holds
    NULL), ``.birthdate_not_as_delivered`` (a joined past birth date gold does not hold:
    0 by the rules, a failing join shows here), counts per gender, per (source of the
    gender: ``CRM`` | ``ERP`` | ``none``, gender), per country (spelling after
    unification) and per marital status;
  - products: ``dim_products.current``: per product number (category_id, category,
    subcategory, maintenance, product_line, cost, start_date, product_name);
  - the summary tables ``mv_monthly_sales_by_product_line`` (keyed by (sales_month,
    product_line)) and ``mv_customer_lifetime_value`` (keyed by customer_id, not by the
    surrogate customer_key) whole, and every business column of ``dim_customers`` (keyed
    by customer_id), ``dim_products`` (by product_number) and ``fact_sales`` (by
    (order_number, product_number)): one figure per column, ``<table>.<column>``, a dict
    from the row's natural key to the value. A surrogate key is given as the natural key
    of the dimension row it points at (``dim_customer_id``, ``dim_product_number``; None
    when the line is not linked).

  Values are int, Decimal, str, None, ``datetime.date``, tuples and dicts of them. The
  figures that compare gold with what was delivered (amount corrected, price derived,
  future birth dates, where the gender came from) read the delivered values in
  ``gold_values`` from bronze, the files as loaded; everything else comes from the
  ``gold_client1`` tables. Silver is never read.

The rules, as the SQL's header comments, README and DESIGN state them:

* text is cleaned as ``shared.clean_text``: ``btrim`` of spaces, tabs, CR and LF,
  blank -> NULL; sales date integers ``YYYYMMDD`` become dates, NULL when not a real date;
* customers: codes mapped (M/S -> Married/Single, M/F -> Male/Female, else ``n/a``); a
  customer delivered twice keeps its most recent row (latest ``cst_create_date``, the
  later row in the file on a tie or when the date is missing);
* products: ``prd_key`` = ``<category id>-<product number>`` (the first five characters,
  ``-`` written ``_``; the rest from the seventh); a product id delivered twice keeps its
  last row; missing cost -> 0; product line M/R/S/T -> Mountain/Road/Other Sales/Touring,
  else ``n/a``; the current product is the history row of its key with no successor (rows
  ordered by start date, a missing one first, then prd_id); ``dim_products`` holds one row
  per non-empty product number (latest start, then highest prd_id) with the category of
  its category id from the ERP categories;
* sales: lines without an order or product number are dropped; the amount is recomputed
  as quantity * |price| when missing, not positive or not equal to it (when the price is
  missing or 0, the delivered amount is kept without its sign, 0 -> NULL); the price is
  derived as round(sales / quantity, 2) when missing or not positive; a line delivered
  twice keeps its last row; it is linked to the dimension rows of its customer id and
  product number;
* ERP: customer ids trimmed, the ``NAS`` prefix and dashes removed; birth dates after
  today -> NULL; gender M/Male, F/Female in any case -> Male/Female, else ``n/a``; country
  DE/Germany, US/USA/United States, GB/UK/United Kingdom unified, blank -> ``n/a``,
  anything else trimmed; categories trimmed; every ERP file keeps the last row per id;
* ``dim_customers``: the CRM customer with the ERP birth date, the country (``n/a`` when
  unknown) and the gender from the CRM unless ``n/a``, then from the ERP, else ``n/a``;
* numbers are PostgreSQL ``numeric`` (``Decimal``), ``round`` is half away from zero.

Every file of a logical name in ``<incoming_root>/<system>/`` counts (``cust_info.csv``
and ``cust_info_20260101.csv`` alike). A batch claims one file per logical name; should a
folder hold several, ``expected_values`` reads them as one file, in name order.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg

from include.etl.config import CLIENTS_DIR, ClientConfig, Column, SourceFile, load_client

Record = dict[str, str]  # a delivered row: source column -> text as delivered
Row = dict[str, object]  # a typed row: column -> value
Table = dict[object, Row]  # natural key -> the row's other columns

# The runtime's value rules (include/validation.py): trimmed, empty means NULL.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_NUMERIC = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SQL_TRIM = " \t\r\n"  # what shared.clean_text trims

MARITAL_STATUS = {"M": "Married", "S": "Single"}  # upper(code) -> name, else n/a
CRM_GENDER = {"M": "Male", "F": "Female"}
ERP_GENDER = {"M": "Male", "MALE": "Male", "F": "Female", "FEMALE": "Female"}
PRODUCT_LINE = {"M": "Mountain", "R": "Road", "S": "Other Sales", "T": "Touring"}
COUNTRY = {
    "DE": "Germany",
    "GERMANY": "Germany",
    "US": "United States",
    "USA": "United States",
    "UNITED STATES": "United States",
    "GB": "United Kingdom",
    "UK": "United Kingdom",
    "UNITED KINGDOM": "United Kingdom",
}
NOT_KNOWN = "n/a"
ERP_SYSTEM_PREFIX = "NAS"  # CUST_AZ12.CID = NAS + customer key
CENT = Decimal("0.01")

# The business columns compared whole, per table (the natural key is the dict key).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "mv_monthly_sales_by_product_line": (  # key (sales_month, product_line)
        "orders",
        "sales_lines",
        "customers",
        "quantity",
        "sales_amount",
    ),
    "mv_customer_lifetime_value": (  # key customer_id (of the customer_key's dimension row)
        "customer_id",
        "customer_number",
        "first_name",
        "last_name",
        "country",
        "orders",
        "sales_lines",
        "quantity",
        "lifetime_value",
        "average_order_value",
        "first_order_date",
        "last_order_date",
    ),
    "dim_customers": (  # key customer_id
        "customer_number",
        "first_name",
        "last_name",
        "country",
        "marital_status",
        "gender",
        "birthdate",
        "create_date",
    ),
    "dim_products": (  # key product_number
        "product_id",
        "product_name",
        "category_id",
        "category",
        "subcategory",
        "maintenance",
        "cost",
        "product_line",
        "start_date",
    ),
    "fact_sales": (  # key (order_number, product_number)
        "dim_product_number",
        "dim_customer_id",
        "customer_id",
        "order_date",
        "shipping_date",
        "due_date",
        "sales_amount",
        "quantity",
        "price",
    ),
}
# dim_products.current: what the issue asks per current product
_CURRENT_PRODUCT = (
    "category_id",
    "category",
    "subcategory",
    "maintenance",
    "product_line",
    "cost",
    "start_date",
    "product_name",
)


def config() -> ClientConfig:
    return load_client(CLIENTS_DIR / "client1.yaml")


# ================================================================ counts and keys
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
        valid: list[dict[str, str]] = []
        for path in delivered_files(incoming_root, system.name, spec):
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


def delivered_files(incoming_root: Path, system: str, spec: SourceFile) -> list[Path]:
    """The files of one logical file in ``<incoming_root>/<system>/``, in name order."""
    folder = Path(incoming_root) / system
    return sorted(p for p in folder.glob("*") if p.is_file() and spec.matches(p.name))


# ================================================================ values: from the files
@dataclass
class Gold:
    """Gold as natural key -> row, one ``Table`` per table and summary table."""

    dim_customers: Table  # customer_id
    dim_products: Table  # product_number
    fact_sales: Table  # (order_number, product_number)
    mv_monthly_sales_by_product_line: Table  # (sales_month, product_line)
    mv_customer_lifetime_value: Table  # customer_id


@dataclass
class Delivered:
    """What was delivered for the gold rows, for the figures that compare the two."""

    sales: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]]  # line -> (sls_sales, sls_price)
    birthdate: dict[int, dt.date | None]  # customer_id -> BDATE of its ERP row (only customers with one)
    today: dt.date  # what "in the future" is measured against (the load's current_date)


def expected_values(incoming_root: Path) -> dict[str, object]:
    """The figures gold should hold after loading this file set as one batch into an empty
    warehouse, computed from the files alone."""
    bronze = expected_bronze(incoming_root)
    gold, delivered = expected_gold(bronze, today=dt.date.today())
    return _headline(gold, delivered) | _whole(gold)


def expected_bronze(incoming_root: Path) -> dict[str, list[Row]]:
    """Per logical file, the rows validation accepts, typed as bronze stores them, in
    delivery order (so ``dwh_row_number`` order: "the last row" is the last one)."""
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


def expected_gold(bronze: dict[str, list[Row]], today: dt.date) -> tuple[Gold, Delivered]:
    """Silver, then gold, of one batch loaded into an empty warehouse."""
    customers = silver_customers(bronze["cust_info"])
    births = silver_birth_data(bronze["CUST_AZ12"], today)
    locations = silver_locations(bronze["LOC_A101"])
    categories = silver_categories(bronze["PX_CAT_G1V2"])
    products = silver_products(bronze["prd_info"])
    sales = silver_sales(bronze["sales_details"])

    dim_customers = gold_dim_customers(customers, births, locations)
    dim_products = gold_dim_products(products, categories)
    fact_sales = gold_fact_sales(sales, dim_customers, dim_products)
    gold = Gold(
        dim_customers=dim_customers,
        dim_products=dim_products,
        fact_sales=fact_sales,
        mv_monthly_sales_by_product_line=monthly_sales_by_product_line(fact_sales, dim_products),
        mv_customer_lifetime_value=customer_lifetime_value(dim_customers, fact_sales),
    )
    delivered = Delivered(
        sales={key: (row["delivered_sales"], row["delivered_price"]) for key, row in fact_sales.items()},
        birthdate={
            customer_id: births[c["customer_number"]]["delivered_bdate"]
            for customer_id, c in dim_customers.items()
            if c["customer_number"] in births
        },
        today=today,
    )
    return gold, delivered


# ---------------------------------------------------------------- helpers: SQL semantics
def clean_text(value: str | None) -> str | None:
    """``shared.clean_text``: ``nullif(btrim(value, E' \\t\\r\\n'), '')``."""
    if value is None:
        return None
    return value.strip(_SQL_TRIM) or None


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


def yyyymmdd_to_date(value: int | None) -> dt.date | None:
    """``shared.yyyymmdd_to_date``: a YYYYMMDD integer as a date, NULL for 0, a
    negative number, the wrong number of digits or a day that does not exist."""
    if value is None or not 10000101 <= value <= 99991231:
        return None
    try:
        return dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:  # month 13, 30 February, day 0, ...
        return None


def round2(value: Decimal | None) -> Decimal | None:
    """PostgreSQL ``round(numeric, 2)``: half away from zero."""
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_UP)


def divide(dividend: Decimal | None, divisor: int | Decimal | None) -> Decimal | None:
    """``dividend / nullif(divisor, 0)`` in ``numeric`` (precise far beyond 2 places)."""
    if dividend is None or divisor is None or divisor == 0:
        return None
    with decimal.localcontext() as context:
        context.prec = 60
        return dividend / divisor


def sql_sum(values: Iterable[object]) -> object:
    """SQL ``sum``: NULLs ignored, NULL when nothing is left."""
    present = [v for v in values if v is not None]
    return sum(present[1:], present[0]) if present else None


def _last_per_key(rows: Iterable[tuple[object, Row]]) -> Table:
    """One row per key, the last one delivered (``DISTINCT ON (key) ... ORDER BY key,
    dwh_row_number DESC``): rows come in delivery order."""
    table: Table = {}
    for key, row in rows:
        table[key] = row
    return table


# ---------------------------------------------------------------- silver rules
def silver_customers(bronze: list[Row]) -> Table:
    """silver_client1.crm_cust_info by cst_id: codes mapped, the most recent row of a
    customer delivered twice (latest create date, then the later row in the file)."""
    latest: dict[int, tuple[tuple[bool, dt.date, int], Row]] = {}
    for position, b in enumerate(bronze):
        if b["cst_id"] is None:
            continue
        # ORDER BY cst_create_date DESC NULLS LAST, dwh_row_number DESC: the greatest wins
        created = b["cst_create_date"]
        recency = (created is not None, created or dt.date.min, position)
        if b["cst_id"] not in latest or recency > latest[b["cst_id"]][0]:
            latest[b["cst_id"]] = (recency, b)
    return {
        cst_id: {
            "customer_number": clean_text(b["cst_key"]),
            "first_name": clean_text(b["cst_firstname"]),
            "last_name": clean_text(b["cst_lastname"]),
            "marital_status": MARITAL_STATUS.get(_upper(clean_text(b["cst_marital_status"])), NOT_KNOWN),
            "crm_gender": CRM_GENDER.get(_upper(clean_text(b["cst_gndr"])), NOT_KNOWN),
            "create_date": b["cst_create_date"],
        }
        for cst_id, (_, b) in latest.items()
    }


def erp_customer_key(cid: str | None) -> str | None:
    """CUST_AZ12.CID as the CRM customer key: trimmed, the NAS prefix and dashes removed
    (``NASAW00011000`` -> ``AW00011000``); None when nothing is left."""
    cid = clean_text(cid)
    if cid is None:
        return None
    return cid.removeprefix(ERP_SYSTEM_PREFIX).replace("-", "") or None


def silver_birth_data(bronze: list[Row], today: dt.date) -> Table:
    """silver_client1.erp_cust_az12 by customer key: a birth date after today is NULL,
    gender spellings unified; the last row of a customer in the file."""

    def clean(b: Row) -> tuple[object, Row] | None:
        key = erp_customer_key(b["cid"])
        if key is None:
            return None
        bdate = b["bdate"]
        return key, {
            "bdate": None if bdate is not None and bdate > today else bdate,
            "gen": ERP_GENDER.get(_upper(clean_text(b["gen"])), NOT_KNOWN),
            "delivered_bdate": bdate,
        }

    return _last_per_key(row for row in map(clean, bronze) if row is not None)


def silver_locations(bronze: list[Row]) -> Table:
    """silver_client1.erp_loc_a101 by customer key (dashes removed): country spellings
    unified, blank -> n/a; the last row of a customer in the file."""

    def clean(b: Row) -> tuple[object, Row] | None:
        cid = clean_text(b["cid"])
        key = cid.replace("-", "") if cid is not None else None
        if not key:
            return None
        country = clean_text(b["cntry"])
        return key, {"cntry": NOT_KNOWN if country is None else COUNTRY.get(country.upper(), country)}

    return _last_per_key(row for row in map(clean, bronze) if row is not None)


def silver_categories(bronze: list[Row]) -> Table:
    """silver_client1.erp_px_cat_g1v2 by category id: trimmed, the last row of an id."""

    def clean(b: Row) -> tuple[object, Row] | None:
        category_id = clean_text(b["id"])
        if category_id is None:
            return None
        return category_id, {
            "cat": clean_text(b["cat"]),
            "subcat": clean_text(b["subcat"]),
            "maintenance": clean_text(b["maintenance"]),
        }

    return _last_per_key(row for row in map(clean, bronze) if row is not None)


def silver_products(bronze: list[Row]) -> list[Row]:
    """silver_client1.crm_prd_info: the product history, the last row of a product id
    delivered twice, each row marked ``current`` when no row of its key follows it."""
    by_id = _last_per_key(
        (b["prd_id"], {**b, "prd_key": clean_text(b["prd_key"])})
        for b in bronze
        if b["prd_id"] is not None and clean_text(b["prd_key"]) is not None
    )
    products: list[Row] = []
    for b in by_id.values():
        key: str = b["prd_key"]
        products.append(
            {
                "prd_key": key,
                "product_id": b["prd_id"],
                "category_id": key[:5].replace("-", "_"),
                "product_number": key[6:],
                "product_name": clean_text(b["prd_nm"]),
                "cost": Decimal(0) if b["prd_cost"] is None else b["prd_cost"],
                "product_line": PRODUCT_LINE.get(_upper(clean_text(b["prd_line"])), NOT_KNOWN),
                "start_date": b["prd_start_dt"],
            }
        )
    # Rows of one key in history order: start date (a missing one counts as the oldest),
    # then prd_id. The last one has no successor: it is the current product.
    history: dict[str, list[Row]] = defaultdict(list)
    for p in products:
        history[p["prd_key"]].append(p)
    for rows in history.values():
        rows.sort(key=_history_order)
        for p in rows:
            p["current"] = p is rows[-1]
    return products


def _history_order(p: Row) -> tuple[bool, dt.date, int]:
    """``ORDER BY prd_start_dt NULLS FIRST, prd_id``."""
    return (p["start_date"] is not None, p["start_date"] or dt.date.min, p["product_id"])


def sales_amounts(
    sales: Decimal | None, quantity: int | None, price: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """(amount, price) of a sales line as silver makes them consistent.

    The amount is quantity * |price| when it is missing, not positive or differs from that
    product; with no usable price (missing or 0) the delivered amount is kept without its
    sign (0 -> NULL). The price is kept when positive, else derived as amount / quantity
    rounded to 2 places. SQL's NULL logic: an amount compared with a NULL product (no
    quantity) is not "different", so a positive amount is then kept.
    """
    unit_price = abs(price) if price is not None and price != 0 else None  # nullif(abs(price), 0)
    if unit_price is None:
        amount = abs(sales) if sales is not None and sales != 0 else None
    else:
        product = quantity * unit_price if quantity is not None else None
        inconsistent = sales is None or sales <= 0 or (product is not None and sales != product)
        amount = product if inconsistent else sales
    derived_price = price if price is not None and price > 0 else round2(divide(amount, quantity))
    return amount, derived_price


def silver_sales(bronze: list[Row]) -> list[Row]:
    """silver_client1.crm_sales_details: every line with an order and a product number,
    dates typed, amounts made consistent, in delivery order."""
    lines: list[Row] = []
    for b in bronze:
        order_number, product_number = clean_text(b["sls_ord_num"]), clean_text(b["sls_prd_key"])
        if order_number is None or product_number is None:
            continue
        amount, price = sales_amounts(b["sls_sales"], b["sls_quantity"], b["sls_price"])
        lines.append(
            {
                "order_number": order_number,
                "product_number": product_number,
                "customer_id": b["sls_cust_id"],
                "order_date": yyyymmdd_to_date(b["sls_order_dt"]),
                "shipping_date": yyyymmdd_to_date(b["sls_ship_dt"]),
                "due_date": yyyymmdd_to_date(b["sls_due_dt"]),
                "sales_amount": amount,
                "quantity": b["sls_quantity"],
                "price": price,
                "delivered_sales": b["sls_sales"],
                "delivered_price": b["sls_price"],
            }
        )
    return lines


# ---------------------------------------------------------------- gold rules
def gold_dim_customers(customers: Table, births: Table, locations: Table) -> Table:
    """gold_client1.dim_customers by customer_id: the CRM customer with its ERP birth date
    and country (n/a when unknown); the gender from the CRM, else the ERP, else n/a."""
    dimension: Table = {}
    for customer_id, c in customers.items():
        birth = births.get(c["customer_number"]) if c["customer_number"] is not None else None
        location = locations.get(c["customer_number"]) if c["customer_number"] is not None else None
        if c["crm_gender"] != NOT_KNOWN:
            gender, source = c["crm_gender"], "CRM"
        elif birth is not None and birth["gen"] != NOT_KNOWN:
            gender, source = birth["gen"], "ERP"
        else:
            gender, source = NOT_KNOWN, "none"
        dimension[customer_id] = {
            "customer_number": c["customer_number"],
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "country": location["cntry"] if location is not None else NOT_KNOWN,
            "marital_status": c["marital_status"],
            "gender": gender,
            "birthdate": birth["bdate"] if birth is not None else None,
            "create_date": c["create_date"],
            "gender_source": source,
        }
    return dimension


def gold_dim_products(products: list[Row], categories: Table) -> Table:
    """gold_client1.dim_products by product_number: the current rows, one per non-empty
    product number (latest start date, then highest prd_id), with their ERP category."""
    chosen: dict[str, Row] = {}

    def rank(p: Row) -> tuple[bool, dt.date, int]:  # ORDER BY start DESC NULLS LAST, prd_id DESC
        return (p["start_date"] is not None, p["start_date"] or dt.date.min, p["product_id"])

    for p in products:
        number = p["product_number"]
        if p["current"] and number != "" and (number not in chosen or rank(p) > rank(chosen[number])):
            chosen[number] = p
    dimension: Table = {}
    for number, p in chosen.items():
        category = categories.get(p["category_id"], {})
        dimension[number] = {
            "product_id": p["product_id"],
            "product_name": p["product_name"],
            "category_id": p["category_id"],
            "category": category.get("cat"),
            "subcategory": category.get("subcat"),
            "maintenance": category.get("maintenance"),
            "cost": p["cost"],
            "product_line": p["product_line"],
            "start_date": p["start_date"],
        }
    return dimension


def gold_fact_sales(sales: list[Row], dim_customers: Table, dim_products: Table) -> Table:
    """gold_client1.fact_sales by (order_number, product_number): the last row of a line
    delivered twice, linked to the dimension rows of its customer id and product number."""
    lines = _last_per_key(((s["order_number"], s["product_number"]), s) for s in sales)
    return {
        key: {
            **{name: s[name] for name in s if name not in ("order_number", "product_number")},
            "dim_product_number": s["product_number"] if s["product_number"] in dim_products else None,
            "dim_customer_id": s["customer_id"] if s["customer_id"] in dim_customers else None,
        }
        for key, s in lines.items()
    }


# ---------------------------------------------------------------- summary tables
def _month(day: dt.date | None) -> dt.date | None:
    """``date_trunc('month', day)::date``."""
    return None if day is None else day.replace(day=1)


def monthly_sales_by_product_line(fact_sales: Table, dim_products: Table) -> Table:
    """gold_client1.mv_monthly_sales_by_product_line: lines with an order date per
    (month, product line of the linked product, n/a when not linked)."""
    groups: dict[tuple[dt.date, str], list[tuple[str, Row]]] = defaultdict(list)
    for (order_number, _), line in fact_sales.items():
        if line["order_date"] is None:
            continue
        product = dim_products.get(line["dim_product_number"])
        product_line = product["product_line"] if product is not None else NOT_KNOWN
        groups[(_month(line["order_date"]), product_line or NOT_KNOWN)].append((order_number, line))
    return {
        key: {
            "orders": len({order_number for order_number, _ in lines}),
            "sales_lines": len(lines),
            "customers": len({line["dim_customer_id"] for _, line in lines} - {None}),
            "quantity": sql_sum(line["quantity"] for _, line in lines),
            "sales_amount": sql_sum(line["sales_amount"] for _, line in lines),
        }
        for key, lines in groups.items()
    }


def customer_lifetime_value(dim_customers: Table, fact_sales: Table) -> Table:
    """gold_client1.mv_customer_lifetime_value by customer_id: every customer with the
    lines linked to it (zero when none)."""
    bought: dict[object, list[tuple[str, Row]]] = defaultdict(list)
    for (order_number, _), line in fact_sales.items():
        if line["dim_customer_id"] is not None:
            bought[line["dim_customer_id"]].append((order_number, line))
    summary: Table = {}
    for customer_id, c in dim_customers.items():
        lines = bought.get(customer_id, [])
        orders = len({order_number for order_number, _ in lines})
        value = sql_sum(line["sales_amount"] for _, line in lines) or Decimal(0)  # coalesce(sum, 0)
        dates = [line["order_date"] for _, line in lines if line["order_date"] is not None]
        summary[customer_id] = {
            "customer_id": customer_id,
            "customer_number": c["customer_number"],
            "first_name": c["first_name"],
            "last_name": c["last_name"],
            "country": c["country"],
            "orders": orders,
            "sales_lines": len(lines),
            "quantity": sql_sum(line["quantity"] for _, line in lines) or 0,
            "lifetime_value": value,
            "average_order_value": round2(divide(value, orders)),
            "first_order_date": min(dates, default=None),
            "last_order_date": max(dates, default=None),
        }
    return summary


# ---------------------------------------------------------------- figures
def _sorted_dict(items: Iterable[tuple[object, object]]) -> dict[object, object]:
    """A dict in key order (None first), so the two sides print alike."""
    return dict(sorted(items, key=lambda item: _sort_key(item[0])))


def _sort_key(value: object) -> tuple:
    if isinstance(value, tuple):
        return tuple(_sort_key(v) for v in value)
    return (value is not None, value if value is not None else 0)


def _count(values: Iterable[object]) -> dict[object, int]:
    return _sorted_dict(Counter(values).items())


def _headline(gold: Gold, delivered: Delivered) -> dict[str, object]:
    """The figures an analyst asks for by name, from the expected gold tables."""
    lines = gold.fact_sales
    customers = gold.dim_customers
    by_month: dict[object, list[object]] = defaultdict(list)
    for line in lines.values():
        by_month[_month(line["order_date"])].append(line["sales_amount"])
    return {
        "fact_sales.sales_total": sql_sum(line["sales_amount"] for line in lines.values()),
        "fact_sales.sales_by_month": _sorted_dict((m, sql_sum(v)) for m, v in by_month.items()),
        "fact_sales.sales_corrected": sum(
            line["sales_amount"] != delivered.sales[key][0] for key, line in lines.items()
        ),
        "fact_sales.price_derived": sum(
            line["price"] != delivered.sales[key][1] for key, line in lines.items()
        ),
        "fact_sales.order_date_null": sum(line["order_date"] is None for line in lines.values()),
        "fact_sales.shipping_date_null": sum(line["shipping_date"] is None for line in lines.values()),
        "fact_sales.due_date_null": sum(line["due_date"] is None for line in lines.values()),
        "fact_sales.customer_not_linked": sum(line["dim_customer_id"] is None for line in lines.values()),
        "fact_sales.product_not_linked": sum(line["dim_product_number"] is None for line in lines.values()),
        "dim_customers.with_birthdate": sum(c["birthdate"] is not None for c in customers.values()),
        "dim_customers.birthdate_future_nulled": sum(
            bdate is not None and bdate > delivered.today and customers[customer_id]["birthdate"] is None
            for customer_id, bdate in delivered.birthdate.items()
        ),
        "dim_customers.birthdate_not_as_delivered": sum(
            bdate is not None and bdate <= delivered.today and customers[customer_id]["birthdate"] != bdate
            for customer_id, bdate in delivered.birthdate.items()
        ),
        "dim_customers.count_by_gender": _count(c["gender"] for c in customers.values()),
        "dim_customers.count_by_gender_source": _count(
            (c["gender_source"], c["gender"]) for c in customers.values()
        ),
        "dim_customers.count_by_country": _count(c["country"] for c in customers.values()),
        "dim_customers.count_by_marital_status": _count(c["marital_status"] for c in customers.values()),
        "dim_products.current": _current_products(gold.dim_products),
    }


def _current_products(dim_products: Table) -> dict[object, object]:
    """Per product number, its category and what it is now (the columns of _CURRENT_PRODUCT)."""
    return _sorted_dict((number, tuple(p[c] for c in _CURRENT_PRODUCT)) for number, p in dim_products.items())


def _whole(gold: Gold) -> dict[str, object]:
    """Every business column of the summary and gold tables: ``<table>.<column>`` -> {key: value}."""
    figures: dict[str, object] = {}
    for table, columns in _COLUMNS.items():
        rows: Table = getattr(gold, table)
        for column in columns:
            figures[f"{table}.{column}"] = _sorted_dict((key, row[column]) for key, row in rows.items())
    return figures


# ================================================================ values: from the warehouse
# Each table as rows of (natural key..., the columns of _COLUMNS in that order).
_TABLE_QUERIES: dict[str, tuple[int, str]] = {  # table -> (columns in the key, query)
    "mv_monthly_sales_by_product_line": (
        2,
        """SELECT sales_month, product_line, orders, sales_lines, customers, quantity, sales_amount
           FROM gold_client1.mv_monthly_sales_by_product_line""",
    ),
    "mv_customer_lifetime_value": (
        1,
        """SELECT c.customer_id AS key, s.customer_id, s.customer_number, s.first_name, s.last_name,
                  s.country, s.orders, s.sales_lines, s.quantity, s.lifetime_value,
                  s.average_order_value, s.first_order_date, s.last_order_date
           FROM gold_client1.mv_customer_lifetime_value AS s
           LEFT JOIN gold_client1.dim_customers AS c ON c.customer_key = s.customer_key""",
    ),
    "dim_customers": (
        1,
        """SELECT customer_id, customer_number, first_name, last_name, country, marital_status,
                  gender, birthdate, create_date
           FROM gold_client1.dim_customers""",
    ),
    "dim_products": (
        1,
        """SELECT product_number, product_id, product_name, category_id, category, subcategory,
                  maintenance, cost, product_line, start_date
           FROM gold_client1.dim_products""",
    ),
    "fact_sales": (
        2,
        """SELECT f.order_number, f.product_number, p.product_number, c.customer_id, f.customer_id,
                  f.order_date, f.shipping_date, f.due_date, f.sales_amount, f.quantity, f.price
           FROM gold_client1.fact_sales AS f
           LEFT JOIN gold_client1.dim_products AS p ON p.product_key = f.product_key
           LEFT JOIN gold_client1.dim_customers AS c ON c.customer_key = f.customer_key""",
    ),
}

# The delivered sales line gold kept: the last bronze row of its key in its batch.
_DELIVERED_SALES = """
    SELECT f.sales_amount, f.price, b.sls_sales, b.sls_price
    FROM gold_client1.fact_sales AS f
    JOIN (
        SELECT DISTINCT ON (dwh_batch_id, order_number, product_number)
               dwh_batch_id, order_number, product_number, sls_sales, sls_price
        FROM (SELECT *, btrim(sls_ord_num, E' \\t\\r\\n') AS order_number,
                        btrim(sls_prd_key, E' \\t\\r\\n') AS product_number
              FROM bronze_client1.crm_sales_details) AS delivered
        ORDER BY dwh_batch_id, order_number, product_number, dwh_row_number DESC
    ) AS b USING (dwh_batch_id, order_number, product_number)"""

# The delivered ERP birth date of each customer: the last bronze row of its key, from its
# batch or an earlier one.
_DELIVERED_BIRTHDATES = """
    SELECT DISTINCT ON (c.customer_id) c.birthdate, e.bdate
    FROM gold_client1.dim_customers AS c
    JOIN (SELECT *, replace(regexp_replace(btrim(cid, E' \\t\\r\\n'), '^NAS', ''), '-', '') AS key
          FROM bronze_client1.erp_cust_az12) AS e
      ON e.key = c.customer_number AND e.dwh_batch_id <= c.dwh_batch_id
    ORDER BY c.customer_id, e.dwh_batch_id DESC, e.dwh_row_number DESC"""

# The CRM's gender code of each customer: the bronze row gold kept (latest create date,
# then the later row in the file), from the customer's batch.
_DELIVERED_CRM_GENDER = """
    SELECT DISTINCT ON (c.customer_id) c.gender, upper(btrim(b.cst_gndr, E' \\t\\r\\n'))
    FROM gold_client1.dim_customers AS c
    JOIN bronze_client1.crm_cust_info AS b ON b.cst_id = c.customer_id AND b.dwh_batch_id = c.dwh_batch_id
    ORDER BY c.customer_id, b.cst_create_date DESC NULLS LAST, b.dwh_row_number DESC"""

_FACT_LINES_WHERE = "SELECT count(*) FROM gold_client1.fact_sales WHERE "
_SCALARS = {
    "fact_sales.sales_total": "SELECT sum(sales_amount) FROM gold_client1.fact_sales",
    "fact_sales.sales_corrected": (
        f"SELECT count(*) FROM ({_DELIVERED_SALES}) AS s WHERE sales_amount IS DISTINCT FROM sls_sales"
    ),
    "fact_sales.price_derived": (
        f"SELECT count(*) FROM ({_DELIVERED_SALES}) AS s WHERE price IS DISTINCT FROM sls_price"
    ),
    "fact_sales.order_date_null": _FACT_LINES_WHERE + "order_date IS NULL",
    "fact_sales.shipping_date_null": _FACT_LINES_WHERE + "shipping_date IS NULL",
    "fact_sales.due_date_null": _FACT_LINES_WHERE + "due_date IS NULL",
    "fact_sales.customer_not_linked": _FACT_LINES_WHERE + "customer_key IS NULL",
    "fact_sales.product_not_linked": _FACT_LINES_WHERE + "product_key IS NULL",
    "dim_customers.with_birthdate": (
        "SELECT count(*) FROM gold_client1.dim_customers WHERE birthdate IS NOT NULL"
    ),
    "dim_customers.birthdate_future_nulled": f"""
        SELECT count(*) FROM ({_DELIVERED_BIRTHDATES}) AS b
        WHERE bdate > current_date AND birthdate IS NULL""",
    "dim_customers.birthdate_not_as_delivered": f"""
        SELECT count(*) FROM ({_DELIVERED_BIRTHDATES}) AS b
        WHERE bdate <= current_date AND birthdate IS DISTINCT FROM bdate""",
}
_GROUPED = {  # the last column is the value, the ones before it the key
    "fact_sales.sales_by_month": """
        SELECT date_trunc('month', order_date)::date, sum(sales_amount)
        FROM gold_client1.fact_sales GROUP BY 1""",
    "dim_customers.count_by_gender": "SELECT gender, count(*) FROM gold_client1.dim_customers GROUP BY 1",
    "dim_customers.count_by_gender_source": f"""
        SELECT CASE WHEN crm_code IN ('M', 'F') THEN 'CRM'
                    WHEN gender <> 'n/a' THEN 'ERP'
                    ELSE 'none' END,
               gender, count(*)
        FROM ({_DELIVERED_CRM_GENDER}) AS g (gender, crm_code) GROUP BY 1, 2""",
    "dim_customers.count_by_country": "SELECT country, count(*) FROM gold_client1.dim_customers GROUP BY 1",
    "dim_customers.count_by_marital_status": (
        "SELECT marital_status, count(*) FROM gold_client1.dim_customers GROUP BY 1"
    ),
}


def gold_values(conn: psycopg.Connection, client: str = "client1") -> dict[str, object]:
    """The same figures, read from the warehouse (gold tables and summary tables of
    gold_client1; the delivered values some figures compare gold with from bronze_client1).
    ``client``: another client of client1's template (its own schemas)."""

    def own(query: str) -> str:
        return re.sub(r"\b(bronze|silver|gold)_client1\.", rf"\1_{client}.", query)

    figures: dict[str, object] = {}
    for name, query in _SCALARS.items():
        figures[name] = conn.execute(own(query)).fetchone()[0]
    for name, query in _GROUPED.items():
        rows = conn.execute(own(query)).fetchall()
        figures[name] = _sorted_dict(((r[0] if len(r) == 2 else tuple(r[:-1])), r[-1]) for r in rows)
    tables: dict[str, Table] = {}
    for table, (width, query) in _TABLE_QUERIES.items():
        columns = _COLUMNS[table]
        tables[table] = {}
        for row in conn.execute(own(query)).fetchall():
            key = row[0] if width == 1 else tuple(row[:width])
            tables[table][key] = dict(zip(columns, row[width:], strict=True))
    figures["dim_products.current"] = _current_products(tables["dim_products"])
    headline = {name: figures[name] for name in _HEADLINE_ORDER}
    return headline | _whole(Gold(**tables))


# The headline figures in the order expected_values gives them.
_HEADLINE_ORDER = (
    "fact_sales.sales_total",
    "fact_sales.sales_by_month",
    "fact_sales.sales_corrected",
    "fact_sales.price_derived",
    "fact_sales.order_date_null",
    "fact_sales.shipping_date_null",
    "fact_sales.due_date_null",
    "fact_sales.customer_not_linked",
    "fact_sales.product_not_linked",
    "dim_customers.with_birthdate",
    "dim_customers.birthdate_future_nulled",
    "dim_customers.birthdate_not_as_delivered",
    "dim_customers.count_by_gender",
    "dim_customers.count_by_gender_source",
    "dim_customers.count_by_country",
    "dim_customers.count_by_marital_status",
    "dim_products.current",
)


# ================================================================ reading, validation, typing
def read_records(path: Path, spec: SourceFile) -> list[Record]:
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


def row_is_valid(record: Record, columns: list[Column]) -> bool:
    return all(value_is_valid(record.get(c.source), c) for c in columns)


_PARSE: dict[str, Callable[[str], object]] = {
    "integer": int,
    "numeric": Decimal,
    "date": dt.date.fromisoformat,
}


def typed_value(raw: str | None, column: Column) -> object:
    """The value bronze stores for one value of an accepted row: an empty value is NULL,
    text is kept as delivered, a typed value is trimmed and parsed (``bigint``,
    ``numeric`` with its delivered scale, ``date``)."""
    if raw is None or raw == "":
        return None
    if column.type == "text":
        return raw
    value = raw.strip()
    return _PARSE[column.type](value) if value else None
