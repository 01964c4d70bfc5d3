"""The client1 demo generator: determinism, file layout, and the dirt silver must clean."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from anywhere: `include` and `tests` live at the root
    sys.path.insert(0, str(ROOT))

from demo.client1 import generate  # noqa: E402
from include.etl.config import CLIENTS_DIR, load_client  # noqa: E402
from tests.expected_client1 import expected_counts  # noqa: E402

HEADERS = {
    "crm/cust_info": [
        "cst_id", "cst_key", "cst_firstname", "cst_lastname",
        "cst_marital_status", "cst_gndr", "cst_create_date",
    ],
    "crm/prd_info": ["prd_id", "prd_key", "prd_nm", "prd_cost", "prd_line", "prd_start_dt", "prd_end_dt"],
    "crm/sales_details": [
        "sls_ord_num", "sls_prd_key", "sls_cust_id", "sls_order_dt", "sls_ship_dt",
        "sls_due_dt", "sls_sales", "sls_quantity", "sls_price",
    ],
    "erp/CUST_AZ12": ["CID", "BDATE", "GEN"],
    "erp/LOC_A101": ["CID", "CNTRY"],
    "erp/PX_CAT_G1V2": ["ID", "CAT", "SUBCAT", "MAINTENANCE"],
}  # fmt: skip
ROWS = 6000


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("client1")
    generate(root, rows=ROWS, seed=7)
    return {name: read(root / f"{name}.csv") for name in HEADERS} | {"_root": root}


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", rows=3000, seed=3, stamp="20260101")
    second = generate(tmp_path / "b", rows=3000, seed=3, stamp="20260101")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", rows=3000, seed=3)
    second = generate(tmp_path / "b", rows=3000, seed=4)
    for a, b in zip(first, second, strict=True):
        if a.name != "PX_CAT_G1V2.csv":  # 30 categories: may legitimately coincide
            assert a.read_bytes() != b.read_bytes(), a.name


def test_files_and_headers(tmp_path: Path) -> None:
    paths = generate(tmp_path, rows=500)
    assert sorted(str(p.relative_to(tmp_path)) for p in paths) == sorted(f"{n}.csv" for n in HEADERS)
    for name, header in HEADERS.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == header, name
        assert all(len(row) == len(header) for row in rows), f"{name}: ragged rows"


def test_stamp_naming_matches_the_config(tmp_path: Path) -> None:
    cfg = load_client(CLIENTS_DIR / "client1.yaml")
    paths = generate(tmp_path, rows=200, stamp="20260105")
    names = {p.name for p in paths}
    assert names == {f"{Path(n).name}_20260105.csv" for n in HEADERS}
    for system, spec in cfg.files:
        matching = [p for p in paths if p.parent.name == system.name and spec.matches(p.name)]
        assert len(matching) == 1, spec.name
    with pytest.raises(ValueError):
        generate(tmp_path, rows=200, stamp="2026-01-05")


def test_sizes(files) -> None:
    assert len(files["crm/sales_details"]) == ROWS  # exactly `rows` sales lines
    customer_ids = {r["cst_id"] for r in files["crm/cust_info"] if r["cst_id"]}
    assert abs(len(customer_ids) - ROWS // 6) <= 2
    keys = {r["prd_key"] for r in files["crm/prd_info"] if r["prd_key"]}
    assert len(keys) >= ROWS // 50 - 2
    history = Counter(r["prd_key"] for r in files["crm/prd_info"] if r["prd_key"])
    assert set(history.values()) <= {1, 2, 3} and max(history.values()) == 3
    assert 25 <= len(files["erp/PX_CAT_G1V2"]) <= 35
    # the ERP knows most customers, not all
    for name in ("erp/CUST_AZ12", "erp/LOC_A101"):
        known = {r["CID"].replace("NAS", "").replace("-", "") for r in files[name] if r["CID"].strip()}
        crm_keys = {r["cst_key"].strip() for r in files["crm/cust_info"]}
        assert 0.8 * len(crm_keys) < len(known & crm_keys) < len(crm_keys), name


def test_keys_fit_together(files) -> None:
    categories = {r["ID"] for r in files["erp/PX_CAT_G1V2"]}
    products = [r["prd_key"] for r in files["crm/prd_info"] if r["prd_key"]]
    in_erp = [k for k in products if k[:5].replace("-", "_") in categories]
    assert 0.8 * len(products) < len(in_erp) < len(products)  # a few categories unknown
    numbers = {k[6:] for k in products}
    sold = [r["sls_prd_key"] for r in files["crm/sales_details"]]
    assert sum(n in numbers for n in sold) > 0.95 * len(sold)
    customer_ids = {r["cst_id"] for r in files["crm/cust_info"]}
    buyers = [r["sls_cust_id"] for r in files["crm/sales_details"]]
    assert sum(c in customer_ids for c in buyers) > 0.95 * len(buyers)


def _share(rows: list[dict[str, str]], predicate) -> float:
    return sum(1 for r in rows if predicate(r)) / len(rows)


def test_dirt_is_present(files) -> None:
    cust, prd, sales = files["crm/cust_info"], files["crm/prd_info"], files["crm/sales_details"]
    az12, loc = files["erp/CUST_AZ12"], files["erp/LOC_A101"]

    def padded(value: str) -> bool:
        return value != value.strip() and value.strip() != ""

    # leading / trailing spaces in text and codes
    assert _share(cust, lambda r: padded(r["cst_firstname"]) or padded(r["cst_lastname"])) > 0.01
    assert _share(cust, lambda r: padded(r["cst_marital_status"])) > 0.01
    assert _share(cust, lambda r: padded(r["cst_gndr"])) > 0.01
    assert _share(prd, lambda r: padded(r["prd_line"]) or padded(r["prd_nm"])) > 0.01
    assert _share(az12, lambda r: padded(r["GEN"])) > 0.01
    # ERP customers delivered twice, the two rows different (the last one counts)
    for rows in (az12, loc):
        by_key = Counter(
            r["CID"].strip().removeprefix("NAS").replace("-", "") for r in rows if r["CID"].strip()
        )
        assert sum(1 for n in by_key.values() if n > 1) > 0.005 * len(by_key)
    assert _share(loc, lambda r: padded(r["CNTRY"])) > 0.01
    # blank or unknown codes
    for column in ("cst_marital_status", "cst_gndr"):
        assert _share(cust, lambda r, c=column: r[c] == "") > 0.01
        assert _share(cust, lambda r, c=column: r[c].strip() not in ("", "M", "S", "F")) > 0.001
    assert _share(prd, lambda r: r["prd_line"] == "") > 0.005
    assert _share(prd, lambda r: r["prd_line"].strip() not in ("", "M", "R", "S", "T")) > 0.001
    assert _share(az12, lambda r: r["GEN"] == "") > 0.01
    assert _share(loc, lambda r: r["CNTRY"] == "") > 0.005
    # several spellings
    assert {"M", "Male", "F", "Female"} <= {r["GEN"] for r in az12}
    assert {"DE", "Germany", "US", "USA", "United States"} <= {r["CNTRY"] for r in loc}
    assert _share(az12, lambda r: r["CID"].startswith("NAS")) > 0.5
    assert _share(az12, lambda r: r["CID"].startswith("AW")) > 0.05
    assert _share(loc, lambda r: r["CID"].startswith("AW-")) > 0.95
    # duplicate customers, with different create dates
    ids = Counter(r["cst_id"] for r in cust if r["cst_id"])
    duplicated = {i for i, n in ids.items() if n > 1}
    assert len(duplicated) > 0.01 * len(ids)
    dates = {}
    for r in cust:
        if r["cst_id"] in duplicated:
            dates.setdefault(r["cst_id"], set()).add(r["cst_create_date"])
    assert all(len(d) > 1 for d in dates.values())
    # products: missing costs, end dates before start dates
    assert _share(prd, lambda r: r["prd_cost"] == "") > 0.01
    assert _share(prd, lambda r: r["prd_end_dt"] and r["prd_end_dt"] < r["prd_start_dt"]) > 0.02
    # sales: date integers 0 or of the wrong length
    assert _share(sales, lambda r: r["sls_order_dt"] == "0") > 0.01
    assert _share(sales, lambda r: len(r["sls_order_dt"]) not in (1, 8)) > 0.005
    assert _share(sales, lambda r: r["sls_ship_dt"] == "0") > 0.002

    # sales amounts missing, negative, or not quantity * |price|; prices missing or negative
    def number(value: str) -> float | None:
        try:
            return float(value)
        except ValueError:
            return None

    assert _share(sales, lambda r: r["sls_sales"] == "") > 0.01
    assert _share(sales, lambda r: (number(r["sls_sales"]) or 0) < 0) > 0.01
    assert _share(sales, lambda r: r["sls_price"] == "") > 0.01
    assert _share(sales, lambda r: (number(r["sls_price"]) or 0) < 0) > 0.01

    def inconsistent(r: dict[str, str]) -> bool:
        s, q, p = number(r["sls_sales"]), number(r["sls_quantity"]), number(r["sls_price"])
        return None not in (s, q, p) and s > 0 and p > 0 and s != q * abs(p)

    assert _share(sales, inconsistent) > 0.01
    # future birth dates
    assert _share(az12, lambda r: r["BDATE"] > "2070") > 0.005
    # sales lines without / with an unknown customer or product, and repeated lines
    assert _share(sales, lambda r: r["sls_cust_id"] == "") > 0.001
    lines = Counter((r["sls_ord_num"], r["sls_prd_key"]) for r in sales)
    assert any(n > 1 for n in lines.values())


def test_rows_validation_rejects(files) -> None:
    cust, prd, sales = files["crm/cust_info"], files["crm/prd_info"], files["crm/sales_details"]
    az12, loc = files["erp/CUST_AZ12"], files["erp/LOC_A101"]
    assert any(r["sls_quantity"] == "abc" for r in sales)  # text in an integer column
    assert any(r["cst_create_date"] == "2024-02-30" for r in cust)  # impossible date
    assert any(r["cst_id"] == "" for r in cust)  # empty required ids
    assert any(r["prd_key"] == "" for r in prd)
    assert any(r["sls_ord_num"].strip() == "" for r in sales)
    assert any(r["CID"].strip() == "" for r in az12 + loc)

    counts = expected_counts(files["_root"])
    total = sum(len(rows) for name, rows in files.items() if name != "_root")
    assert 0 < counts["rejected"] < 0.005 * total  # about 0.1 %
    assert counts["bronze.crm_sales_details"] == ROWS - sum(
        1 for r in sales if r["sls_quantity"] == "abc" or not r["sls_ord_num"].strip()
    )
    assert counts["gold.fact_sales"] < counts["bronze.crm_sales_details"]  # repeated lines
    assert counts["gold.dim_customers"] < counts["bronze.crm_cust_info"]  # duplicates
    assert counts["gold.dim_products"] < counts["bronze.crm_prd_info"]  # history rows
