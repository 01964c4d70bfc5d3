"""The client2 demo generator: deterministic, shaped as configured, and dirty on purpose."""

from __future__ import annotations

import csv
import json
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # runnable as `pytest tests/unit/...` from anywhere
    sys.path.insert(0, str(ROOT))

from demo.client2 import generate  # noqa: E402
from include.etl.config import CLIENTS_DIR, load_client  # noqa: E402
from tests.expected_client2 import expected_counts, read_records, row_is_valid  # noqa: E402

CONFIG = load_client(CLIENTS_DIR / "client2.yaml")


def _spec(logical: str):
    return CONFIG.file(logical)


def _path(root: Path, logical: str) -> Path:
    system, spec = _spec(logical)
    matches = [p for p in (root / system.name).iterdir() if spec.matches(p.name)]
    assert len(matches) == 1, f"{logical}: expected one file, got {matches}"
    return matches[0]


def _records(root: Path, logical: str) -> list[dict[str, str | None]]:
    return read_records(_path(root, logical), _spec(logical)[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("client2")
    return root, generate(root, rows=2000, seed=11, stamp="20260105")


# ---------------------------------------------------------------- determinism
def test_same_arguments_give_identical_bytes(files, tmp_path):
    root, written = files
    again = generate(tmp_path, rows=2000, seed=11, stamp="20260105")
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(root) for p in written]
    for first, second in zip(written, again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_another_seed_gives_other_data(files, tmp_path):
    _, written = files
    other = generate(tmp_path, rows=2000, seed=12, stamp="20260105")
    for first, second in zip(written, other, strict=True):
        if first.name.startswith("plans"):
            continue  # the price list is mostly fixed
        assert first.read_bytes() != second.read_bytes(), first.name


def test_workbook_carries_no_wall_clock(files):
    root, _ = files
    with zipfile.ZipFile(_path(root, "invoices")) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2026, 1, 1, 0, 0, 0)}
        core = zf.read("docProps/core.xml").decode()
    assert re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", core) == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    ]


def test_file_names_match_the_configured_patterns(files, tmp_path):
    root, written = files
    assert len(written) == len(CONFIG.files)
    for system, spec in CONFIG.files:
        assert _path(root, spec.name).parent == root / system.name
    unstamped = generate(tmp_path, rows=50, seed=1)
    assert sorted(p.name for p in unstamped) == [
        "accounts.json",
        "invoices.xlsx",
        "plans.csv",
        "usage_events.jsonl",
    ]
    for path in unstamped:
        assert any(spec.matches(path.name) for _, spec in CONFIG.files), path.name


def test_bad_stamp_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, rows=10, stamp="2026-01-05")


# ---------------------------------------------------------------- shape as configured
def _sources(logical: str) -> list[str]:
    return [c.source for c in _spec(logical)[1].columns]


def test_invoice_workbook_header_on_the_configured_sheet_and_row(files):
    root, _ = files
    spec = _spec("invoices")[1]
    book = CalamineWorkbook.from_path(str(_path(root, "invoices")))
    assert spec.reader.sheet in book.sheet_names
    rows = book.get_sheet_by_name(spec.reader.sheet).to_python(skip_empty_area=False)
    assert rows[spec.reader.header_row - 1] == _sources("invoices")
    assert rows[0][0].startswith("Billing export")  # the title block above the header


def test_plan_list_is_semicolon_delimited_latin1(files):
    root, _ = files
    spec = _spec("plans")[1]
    raw = _path(root, "plans").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really Latin-1: the accented plan names are single bytes
    text = raw.decode(spec.reader.encoding)
    rows = list(csv.reader(text.splitlines(), delimiter=spec.reader.delimiter))
    assert rows[0] == _sources("plans")
    assert all(len(r) == len(rows[0]) for r in rows)
    assert any("Équipe" in r[1] for r in rows)


def test_accounts_are_one_json_array(files):
    root, _ = files
    assert _spec("accounts")[1].reader.json_records == "array"
    data = json.loads(_path(root, "accounts").read_text(encoding="utf-8"))
    assert isinstance(data, list) and data
    assert all(list(obj) == _sources("accounts") for obj in data)


def test_usage_events_are_json_lines(files):
    root, _ = files
    assert _spec("usage_events")[1].reader.json_records == "lines"
    lines = _path(root, "usage_events").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 2000
    assert all(list(json.loads(line)) == _sources("usage_events") for line in lines)


# ---------------------------------------------------------------- the dirt
def test_padded_text_and_mixed_case_codes(files):
    root, _ = files
    invoices = _records(root, "invoices")
    accounts = _records(root, "accounts")
    events = _records(root, "usage_events")
    padded = [v for v in (r["Account ID"] for r in invoices) if v and v != v.strip()]
    assert padded
    assert [r for r in accounts if r["companyName"] and r["companyName"] != r["companyName"].strip()]
    assert [r for r in events if r["eventType"] and r["eventType"] != r["eventType"].strip()]
    for rows, column in (
        (invoices, "Invoice No"),
        (invoices, "Plan Code"),
        (accounts, "accountId"),
        (accounts, "countryCode"),
        (events, "eventId"),
    ):
        values = [v.strip() for v in (r[column] for r in rows) if v and v.strip()]
        assert any(v != v.upper() for v in values) and any(v == v.upper() for v in values), column


def test_blank_codes(files):
    root, _ = files
    assert any(r["Plan Code"] is None for r in _records(root, "invoices"))
    assert any(not r["countryCode"] for r in _records(root, "accounts"))
    assert any(r["Tier"] is None for r in _records(root, "plans"))


@pytest.mark.parametrize(
    "logical, column, normalise",
    [
        ("invoices", "Invoice No", str.upper),
        ("plans", "PlanCode", str.upper),
        ("accounts", "accountId", str.upper),
        ("usage_events", "eventId", str.lower),
    ],
)
def test_duplicates_after_normalisation(files, logical, column, normalise):
    root, _ = files
    keys = Counter(normalise(r[column].strip()) for r in _records(root, logical) if r[column])
    assert any(n > 1 for n in keys.values()), logical


def test_exact_duplicate_lines(files):
    root, _ = files
    lines = _path(root, "usage_events").read_text(encoding="utf-8").splitlines()
    assert len(set(lines)) < len(lines)


def test_about_half_a_percent_is_rejected(files):
    root, _ = files
    counts = expected_counts(root)
    total = sum(len(_records(root, spec.name)) for _, spec in CONFIG.files)
    bronze = sum(v for k, v in counts.items() if k.startswith("bronze."))
    assert bronze + counts["rejected"] == total
    assert 0.002 <= counts["rejected"] / total <= 0.01
    for _, spec in CONFIG.files:  # within every file's reject policy
        rows = _records(root, spec.name)
        bad = sum(not row_is_valid(r, spec.columns) for r in rows)
        assert bad <= spec.reject_policy.max_ratio * len(rows), spec.name


def test_each_kind_of_invalid_row_is_present(files):
    root, _ = files
    invoices = _records(root, "invoices")
    events = _records(root, "usage_events")
    accounts = _records(root, "accounts")
    numeric = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
    assert any(r["Amount"] and not numeric.fullmatch(r["Amount"].strip()) for r in invoices)
    assert any(
        r["Invoice Date"] and re.fullmatch(r"\d{4}-(02-3\d|13-\d\d|04-31|00-\d\d)", r["Invoice Date"])
        for r in invoices
    )
    assert any(not r["Invoice No"] for r in invoices)
    assert any(
        r["eventTs"] and re.match(r"\d{4}-(02-3\d|13-\d\d|04-31|00-\d\d)", r["eventTs"]) for r in events
    )
    assert any(not r["eventId"] for r in events)
    assert any(not r["accountId"] for r in accounts)


def test_expected_counts_shape(files, tmp_path):
    root, _ = files
    counts = expected_counts(root)
    assert set(counts) == (
        {f"bronze.{spec.bronze_table}" for _, spec in CONFIG.files}
        | {f"gold.{step.table}" for step in CONFIG.gold}
        | {"rejected"}
    )
    assert counts["gold.fact_invoices"] < counts["bronze.billing_invoices"]  # duplicates merged
    assert counts["gold.fact_usage_events"] < counts["bronze.app_usage_events"]
    # the price list is optional: without it the counts are simply zero
    generate(tmp_path, rows=100, seed=3)
    (tmp_path / "billing" / "plans.csv").unlink()
    without = expected_counts(tmp_path)
    assert without["bronze.billing_plans"] == 0 and without["gold.dim_plans"] == 0
