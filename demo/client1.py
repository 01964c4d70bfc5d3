"""Demo data for client1: the six CRM/ERP extracts of the retail sales warehouse.

``generate()`` writes ``crm/cust_info.csv``, ``crm/prd_info.csv``, ``crm/sales_details.csv``,
``erp/CUST_AZ12.csv``, ``erp/LOC_A101.csv`` and ``erp/PX_CAT_G1V2.csv`` (with ``_<stamp>``
before ``.csv`` when a stamp is given) under an incoming folder.

The files are deterministic (same arguments -> byte-identical files: a
``random.Random`` per file, or per group of files written together, seeded from the seed
and the file name, never the clock) and streamed in chunks, so ``rows`` may be tens of
millions (memory grows only with the number of products, ``rows / 50``). They carry the dirt the silver
layer must clean, a few percent of each kind:

* leading/trailing spaces in names and codes; blank and unknown codes;
* customers delivered twice (an older and a newer row, by ``cst_create_date``);
* missing product costs; product end dates before their start dates;
* sales date integers that are ``0`` or of the wrong length;
* sales amounts missing, negative or not ``quantity * |price|``; prices missing or negative;
* ERP customer ids with the ``NAS`` prefix / a dash; genders and countries in several
  spellings or blank; birth dates in the future; ERP customers delivered twice (a stale
  row, then the right one: the last row of the file wins);
* sales lines for unknown customers/products, sales lines without a customer, and a few
  sales lines delivered twice;

and about 0.1% of rows that validation rejects before bronze: text in a typed column
(``sls_quantity = abc``, ``prd_cost = n/a``), an impossible date
(``cst_create_date = 2024-02-30``) and empty required ids.

    python -m demo.client1 /tmp/incoming --rows 5000 --seed 7 --stamp 20260101
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import random
import time
from pathlib import Path

HEADERS: dict[str, list[str]] = {
    "cust_info": [
        "cst_id", "cst_key", "cst_firstname", "cst_lastname",
        "cst_marital_status", "cst_gndr", "cst_create_date",
    ],
    "prd_info": ["prd_id", "prd_key", "prd_nm", "prd_cost", "prd_line", "prd_start_dt", "prd_end_dt"],
    "sales_details": [
        "sls_ord_num", "sls_prd_key", "sls_cust_id", "sls_order_dt", "sls_ship_dt",
        "sls_due_dt", "sls_sales", "sls_quantity", "sls_price",
    ],
    "CUST_AZ12": ["CID", "BDATE", "GEN"],
    "LOC_A101": ["CID", "CNTRY"],
    "PX_CAT_G1V2": ["ID", "CAT", "SUBCAT", "MAINTENANCE"],
}  # fmt: skip
SYSTEM_OF = {
    "cust_info": "crm", "prd_info": "crm", "sales_details": "crm",
    "CUST_AZ12": "erp", "LOC_A101": "erp", "PX_CAT_G1V2": "erp",
}  # fmt: skip

FIRST_CUSTOMER_ID = 11000
FIRST_ORDER_NUMBER = 43697
EPOCH = dt.date(2019, 1, 1)  # day 0 of every day offset below

# Category id (the ERP spelling, "_"), category, subcategory, maintenance. The last two are
# used by products but missing from PX_CAT_G1V2 (the ERP does not know every category).
CATEGORIES: list[tuple[str, str, str, str]] = [
    ("AC_BR", "Accessories", "Bike Racks", "Yes"),
    ("AC_BS", "Accessories", "Bike Stands", "No"),
    ("AC_BC", "Accessories", "Bottles and Cages", "No"),
    ("AC_CL", "Accessories", "Cleaners", "Yes"),
    ("AC_FE", "Accessories", "Fenders", "No"),
    ("AC_HE", "Accessories", "Helmets", "Yes"),
    ("AC_HP", "Accessories", "Hydration Packs", "No"),
    ("AC_LI", "Accessories", "Lights", "Yes"),
    ("AC_LO", "Accessories", "Locks", "Yes"),
    ("AC_PA", "Accessories", "Panniers", "No"),
    ("AC_PU", "Accessories", "Pumps", "Yes"),
    ("AC_TT", "Accessories", "Tires and Tubes", "Yes"),
    ("BI_MB", "Bikes", "Mountain Bikes", "Yes"),
    ("BI_RB", "Bikes", "Road Bikes", "Yes"),
    ("BI_TB", "Bikes", "Touring Bikes", "Yes"),
    ("CL_BS", "Clothing", "Bib-Shorts", "No"),
    ("CL_CA", "Clothing", "Caps", "No"),
    ("CL_GL", "Clothing", "Gloves", "No"),
    ("CL_JE", "Clothing", "Jerseys", "No"),
    ("CL_SH", "Clothing", "Shorts", "No"),
    ("CL_SO", "Clothing", "Socks", "No"),
    ("CL_VE", "Clothing", "Vests", "No"),
    ("CO_BB", "Components", "Bottom Brackets", "Yes"),
    ("CO_BR", "Components", "Brakes", "Yes"),
    ("CO_CH", "Components", "Chains", "Yes"),
    ("CO_CS", "Components", "Cranksets", "Yes"),
    ("CO_DE", "Components", "Derailleurs", "Yes"),
    ("CO_FO", "Components", "Forks", "Yes"),
    ("CO_HB", "Components", "Handlebars", "Yes"),
    ("CO_RF", "Components", "Road Frames", "Yes"),
    ("CO_PE", "Components", "Pedals", "Yes"),  # not delivered by the ERP
    ("CO_WH", "Components", "Wheels", "Yes"),  # not delivered by the ERP
]
DELIVERED_CATEGORIES = 30
MIN_ROWS_TO_FORCE = 200  # files this big get one rejected row of each kind for sure

MALE_NAMES = [
    "Jon", "Eugene", "Ruben", "Christy", "Luke", "Mauricio", "Adam", "Jason", "Ian", "Jörg", "José",
    "Marco",
]  # fmt: skip
FEMALE_NAMES = [
    "Elizabeth", "Julia", "Marta", "Roberta", "Shannon", "Jacquelyn", "Lauren", "Ana", "Zoë", "Mia",
    "Chloé", "Kelly",
]  # fmt: skip
LAST_NAMES = [
    "Yang", "Huang", "Torres", "Zhu", "Johnson", "Ruiz", "Alvarez", "Mehta", "Verhoff", "Carlson",
    "Suarez", "Lu", "Walker", "Jenkins", "Müller", "Dubois", "Schmidt", "Nguyen", "Kumar", "Smith",
]  # fmt: skip
# (country, its spellings in LOC_A101, weight)
COUNTRIES = [
    (("US", "USA", "United States"), 0.35),
    (("DE", "Germany"), 0.13),
    (("United Kingdom",), 0.12),
    (("France",), 0.10),
    (("Canada",), 0.12),
    (("Australia",), 0.18),
]
PRODUCT_LINES = ["M", "R", "S", "T"]
MODELS = ["100", "150", "200", "250", "300", "350", "400", "500", "550", "650", "700", "750"]
COLORS = ["Black", "Red", "Silver", "Blue", "Yellow", "Multi", "White"]


def file_name(logical: str, stamp: str | None = None) -> str:
    """``cust_info.csv`` or, with a stamp, ``cust_info_20260101.csv``."""
    return f"{logical}_{stamp}.csv" if stamp else f"{logical}.csv"


def product_number(i: int) -> str:
    """Product number of product ``i``, e.g. ``FR-002A-44``: unique (the hex part is ``i``)."""
    return f"{'FRBKHLTRSHGLJRPDCHWH'[2 * (i % 10) : 2 * (i % 10) + 2]}-{i:04X}-{38 + (i * 7) % 25}"


def category_of(i: int) -> str:
    """Category id (ERP spelling) of product ``i``."""
    return CATEGORIES[(i * 7) % len(CATEGORIES)][0]


def base_cost(i: int) -> int:
    return 2 + (i * 7919) % 1200


def list_price(i: int) -> int:
    """The unit price sales lines of product ``i`` are sold at (whole currency units)."""
    return base_cost(i) * 2 + 1


def _day_strings(first: dt.date, days: int) -> tuple[list[str], list[str]]:
    """ISO (``2024-05-01``) and integer (``20240501``) spellings of consecutive days."""
    iso = [(first + dt.timedelta(days=d)).isoformat() for d in range(days)]
    return iso, [s.replace("-", "") for s in iso]


class _Lines:
    """A write-only CSV file fed with ready-made lines, written in chunks.

    The generator controls every value and none contains a comma, a double quote or a
    line break, so joining with commas is valid CSV (and several times faster than
    ``csv.writer`` for the millions of rows we may write).
    """

    def __init__(self, path: Path, header: list[str]) -> None:
        self._fh = path.open("w", encoding="utf-8", newline="")
        self._chunk: list[str] = [",".join(header) + "\n"]
        self.add = self._chunk.append  # add("a,b,c\n")

    def row(self, values: list[str] | tuple[str, ...]) -> None:
        self.add(",".join(values) + "\n")

    def flush_if_big(self) -> None:
        if len(self._chunk) >= 20_000:
            self._fh.write("".join(self._chunk))
            self._chunk.clear()

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.write("".join(self._chunk))
        self._chunk.clear()
        self._fh.close()


def generate(incoming_root: Path, rows: int = 2000, seed: int = 7, stamp: str | None = None) -> list[Path]:
    """Write the six client1 files under ``incoming_root/{crm,erp}/``; return their paths.

    ``rows`` is the number of data rows of ``sales_details`` (duplicated and rejected lines
    included); there are about ``rows / 6`` customers, ``max(20, rows / 50)`` product
    keys with one to three history rows each and 30 categories.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if stamp is not None and not (len(stamp) == 8 and stamp.isdigit()):
        raise ValueError(f"stamp must be YYYYMMDD, got {stamp!r}")
    incoming_root = Path(incoming_root)
    paths = {}
    for logical, system in SYSTEM_OF.items():
        (incoming_root / system).mkdir(parents=True, exist_ok=True)
        paths[logical] = incoming_root / system / file_name(logical, stamp)

    n_customers = max(10, rows // 6)
    n_products = max(20, rows // 50)

    def rng(logical: str) -> random.Random:
        # A string seed is hashed with SHA-512: stable across runs and Python versions.
        return random.Random(f"client1:{seed}:{logical}")

    _write_customers(paths, rng("customers"), n_customers)
    _write_products(paths["prd_info"], rng("prd_info"), n_products)
    _write_sales(paths["sales_details"], rng("sales_details"), rows, n_customers, n_products)
    _write_categories(paths["PX_CAT_G1V2"], rng("PX_CAT_G1V2"))
    return [paths[logical] for logical in SYSTEM_OF]


def _write_customers(paths: dict[str, Path], rng: random.Random, n_customers: int) -> None:
    """cust_info, CUST_AZ12 and LOC_A101 in one pass, so the three agree on each customer."""
    r = rng.random
    created_iso, _ = _day_strings(EPOCH, 7 * 366)  # customers created 2020..2025
    birth_iso, _ = _day_strings(dt.date(1940, 1, 1), 66 * 365)  # born 1940..2005
    future_iso, _ = _day_strings(dt.date(2080, 1, 1), 20 * 365)  # "born" 2080..2099
    n_birth, n_future = len(birth_iso), len(future_iso)
    n_male, n_female, n_last = len(MALE_NAMES), len(FEMALE_NAMES), len(LAST_NAMES)
    country_spellings = [spellings for spellings, _ in COUNTRIES]
    country_cumulative = list(itertools.accumulate(weight for _, weight in COUNTRIES))
    country_cumulative[-1] = 1.0  # no rounding gap at the top
    # Each kind of rejected row is also forced once, so even a small file set has all
    # (not in tiny files, where one rejected row would break the reject policy).
    big = n_customers >= MIN_ROWS_TO_FORCE
    force = {n_customers // 2: "date", n_customers // 3: "no id"} if big else {}

    with (
        _Lines(paths["cust_info"], HEADERS["cust_info"]) as crm,
        _Lines(paths["CUST_AZ12"], HEADERS["CUST_AZ12"]) as az12,
        _Lines(paths["LOC_A101"], HEADERS["LOC_A101"]) as loc,
    ):
        for j in range(n_customers):
            cst_id = FIRST_CUSTOMER_ID + j
            key = f"AW{cst_id:08d}"
            male = r() < 0.5
            if male:
                first, gender, word = MALE_NAMES[int(r() * n_male)], "M", "Male"
            else:
                first, gender, word = FEMALE_NAMES[int(r() * n_female)], "F", "Female"
            last = LAST_NAMES[int(r() * n_last)]
            marital = "M" if r() < 0.55 else "S"
            created = created_iso[366 + int(r() * (6 * 366))]  # 2020-01-01 onwards

            # --- CRM customer row, with its dirt
            key_out = key
            u = r()
            if u < 0.04:
                first, last = f" {first}", f"{last}  "  # spaces around names
            elif u < 0.05:
                key_out = f" {key} "  # spaces around the key
            elif u < 0.06:
                created = ""  # no create date
            u = r()
            if u < 0.03:
                marital = ""  # blank code
            elif u < 0.04:
                marital = "X"  # unknown code
            elif u < 0.07:
                marital = f" {marital} "
            gndr = gender
            u = r()
            if u < 0.10:
                gndr = ""  # blank: gold falls back to the ERP gender
            elif u < 0.11:
                gndr = "U"  # unknown code
            elif u < 0.14:
                gndr = f"{gndr} "
            u = r()
            if j in force:
                u = 0.0001 if force[j] == "date" else 0.0007
            if u < 0.0005:  # rejected: an impossible date (this customer row is lost)
                crm.add(f"{cst_id},{key_out},{first},{last},{marital},{gndr},2024-02-30\n")
            elif u < 0.001:  # rejected: a row without a customer id (plus the good row)
                crm.add(f",{key_out},{first},{last},{marital},{gndr},{created}\n")
                crm.add(f"{cst_id},{key_out},{first},{last},{marital},{gndr},{created}\n")
            elif u < 0.03:  # delivered twice: an older version of the customer as well
                current = f"{cst_id},{key_out},{first},{last},{marital},{gndr},{created}\n"
                was = "S" if marital.strip() == "M" else "M"
                older = created_iso[366 - 30 - int(r() * 300)]  # always before `created`
                previous = f"{cst_id},{key},{first},{last},{was},{gndr},{older}\n"
                if u < 0.015:
                    crm.add(current)
                    crm.add(previous)
                else:
                    crm.add(previous)
                    crm.add(current)
            else:
                crm.add(f"{cst_id},{key_out},{first},{last},{marital},{gndr},{created}\n")

            # --- ERP birth data (most customers): CID with or without the NAS prefix
            u = r()
            if big and j == n_customers // 4:
                u = 0.9205  # forced: the rejected row
            if u < 0.92:
                cid = f"NAS{key}" if u < 0.78 else key
                u = r()
                if u < 0.02:
                    bdate = future_iso[int(r() * n_future)]  # in the future
                elif u < 0.03:
                    bdate = ""
                else:
                    bdate = birth_iso[int(r() * n_birth)]
                u = r()
                if u < 0.05:
                    gen = ""
                elif u < 0.08:
                    gen = f" {word} "
                elif u < 0.5:
                    gen = gender
                else:
                    gen = word
                if j % 97 == 13:  # delivered twice: a stale row first, the file's last row wins
                    stale = "Female" if word == "Male" else "Male"
                    az12.add(f"{key},{birth_iso[(7 * j) % n_birth]},{stale}\n")
                az12.add(f"{cid},{bdate},{gen}\n")
            elif u < 0.921:
                az12.add(f",{birth_iso[j % n_birth]},{gender}\n")  # rejected: no CID

            # --- ERP location (most customers): CID with a dash
            u = r()
            if big and j == n_customers // 5:
                u = 0.9005  # forced: the rejected row
            if u < 0.90:
                spellings = country_spellings[bisect.bisect_left(country_cumulative, r())]
                country = spellings[int(r() * len(spellings))]
                w = r()
                if w < 0.02:
                    country = ""
                elif w < 0.05:
                    country = f" {country} "
                if j % 89 == 7:  # delivered twice: a stale row first, the file's last row wins
                    loc.add(f"AW{cst_id:08d},{'Canada' if country.strip() != 'Canada' else 'France'}\n")
                loc.add(f"AW-{cst_id:08d},{country}\n")
            elif u < 0.901:
                loc.add("  ,France\n")  # rejected: a blank CID
            crm.flush_if_big()
            az12.flush_if_big()
            loc.flush_if_big()


def _write_products(path: Path, rng: random.Random, n_products: int) -> None:
    r = rng.random
    iso, _ = _day_strings(EPOCH, 8 * 366)
    prd_id = 200
    # Each kind of rejected row is also forced once (see _write_customers).
    big = n_products * 2 >= MIN_ROWS_TO_FORCE  # two history rows per key on average
    force = {n_products // 2: 0.1202, n_products // 3: 0.1207} if big else {}
    with _Lines(path, HEADERS["prd_info"]) as out:
        for i in range(n_products):
            cat = category_of(i)
            key = f"{cat.replace('_', '-')}-{product_number(i)}"
            subcat = CATEGORIES[(i * 7) % len(CATEGORIES)][2]
            name = f"{subcat} {MODELS[i % len(MODELS)]} {COLORS[(i // 3) % len(COLORS)]}"
            line = PRODUCT_LINES[int(r() * 4)]
            history = 1 + int(r() * 3)
            first_start = 30 + int(r() * 700)
            # strictly increasing start dates, about a year apart
            starts = [first_start + h * 365 + int(r() * 60) for h in range(history)]
            cost = base_cost(i)
            for h, start in enumerate(starts):
                prd_id += 1
                last = h == history - 1
                # the delivered end date is unreliable: silver recomputes it
                w = r()
                if w < 0.08:
                    end = iso[max(0, start - 1 - int(r() * 300))]  # before the start
                elif last:
                    end = ""
                elif w < 0.5:
                    end = iso[starts[h + 1] - 1]
                else:
                    end = iso[starts[h + 1] + 30]  # overlaps the next row
                row = [str(prd_id), key, name, str(cost + 3 * h), line, iso[start], end]
                w = r()
                if h == 0 and i in force:
                    w = force[i]
                if w < 0.03:
                    row[3] = ""  # missing cost
                elif w < 0.05:
                    row[4] = ""  # blank product line
                elif w < 0.06:
                    row[4] = "X"  # unknown product line
                elif w < 0.09:
                    row[4] = f" {line} "
                elif w < 0.12:
                    row[2] = f" {name}  "
                elif w < 0.1205:
                    row[1] = ""  # rejected: empty required key
                elif w < 0.121:
                    row[3] = "n/a"  # rejected: text in a numeric column
                out.row(row)
            out.flush_if_big()


def _write_sales(path: Path, rng: random.Random, rows: int, n_customers: int, n_products: int) -> None:
    """The sales lines: the file that gets big, so clean lines take a fast path."""
    r = rng.random
    _, day_int = _day_strings(EPOCH, 8 * 366)
    sales_from, sales_days = 3 * 365, 3 * 365  # orders 2022..2024
    numbers = [product_number(i) for i in range(n_products)]
    prices = [list_price(i) for i in range(n_products)]
    unknown_customer = str(FIRST_CUSTOMER_ID + n_customers + 500_000)
    written = 0
    order = FIRST_ORDER_NUMBER
    # Each kind of rejected line is also forced once, on the first line of an order
    # (see _write_customers).
    force = {}
    if rows >= MIN_ROWS_TO_FORCE:
        force = {FIRST_ORDER_NUMBER + 1 + rows // 8: 0.1735, FIRST_ORDER_NUMBER + 2 + rows // 8: 0.1742}
    with _Lines(path, HEADERS["sales_details"]) as out:
        add = out.add
        while written < rows:
            order += 1
            so = f"SO{order}"
            lines = min(1 + int(r() * 4), rows - written)
            cust = str(FIRST_CUSTOMER_ID + int(r() * n_customers))
            day = sales_from + int(r() * sales_days)
            ship_gap = 5 + int(r() * 5)
            od, sd, dd = day_int[day], day_int[day + ship_gap], day_int[day + ship_gap + 5]
            dates = f"{od},{sd},{dd}"
            first = int(r() * n_products)
            step = 1 + int(r() * 3)  # distinct products within the order (step * 3 < 20)
            forced = force.get(order)
            for line in range(lines):
                p = (first + step * line) % n_products
                price = prices[p]
                u = r()
                if forced and line == 0:
                    u = forced
                # quantity 1 for most lines; the same draw picks the (exclusive) dirt kind
                qty = 1 if u < 0.85 else 2 + int((u - 0.85) * 20)
                if u >= 0.2:  # clean line (fast path)
                    add(f"{so},{numbers[p]},{cust},{dates},{qty * price},{qty},{price}\n")
                    continue
                row = [so, numbers[p], cust, od, sd, dd, str(qty * price), str(qty), str(price)]
                if u < 0.02:
                    row[3] = "0"  # no order date
                elif u < 0.035:
                    row[3] = od[:7] if u < 0.028 else od + "1"  # wrong length
                elif u < 0.045:
                    row[4] = "0"  # no ship date
                elif u < 0.065:
                    row[6] = ""  # missing sales
                elif u < 0.085:
                    row[6] = str(-qty * price)  # negative sales
                elif u < 0.115:
                    row[6] = str(qty * price + 1 + int(r() * 50))  # sales != qty * price
                elif u < 0.135:
                    row[8] = ""  # missing price
                elif u < 0.155:
                    row[8] = str(-price)  # negative price
                elif u < 0.16:
                    row[2] = ""  # no customer
                elif u < 0.165:
                    row[2] = unknown_customer
                elif u < 0.17:
                    row[1] = f"ZZ-{line:04X}-00"  # unknown product
                elif u < 0.173:
                    if written + lines < rows:  # the same line delivered twice
                        add(",".join(row) + "\n")
                        written += 1
                elif u < 0.174:
                    row[7] = "abc"  # rejected: text in an integer column
                elif u < 0.1745:
                    row[0] = " "  # rejected: empty required order number
                add(",".join(row) + "\n")
            written += lines
            out.flush_if_big()


def _write_categories(path: Path, rng: random.Random) -> None:
    r = rng.random
    with _Lines(path, HEADERS["PX_CAT_G1V2"]) as out:
        for cat_id, cat, subcat, maintenance in CATEGORIES[:DELIVERED_CATEGORIES]:
            if r() < 0.1:
                cat = f" {cat} "
            out.row((cat_id, cat, subcat, maintenance))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("incoming_root", type=Path)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stamp")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = generate(args.incoming_root, args.rows, args.seed, args.stamp)
    seconds = time.perf_counter() - started
    for p in paths:
        print(p)
    print(f"{args.rows} sales lines in {seconds:.2f}s ({args.rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
