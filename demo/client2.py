"""Demo data for client2, a B2B subscription software (SaaS) company.

Four files, in the shapes the client's systems really deliver them:

* ``billing/invoices[_<stamp>].xlsx``: workbook, sheet ``Invoices``, a two-line title
  block, the header on row 3 ("Invoice No", "Account ID", ...). Invoice dates are real
  date cells, due dates are text in ``dd.mm.yyyy``, seats and amounts numeric cells.
* ``billing/plans[_<stamp>].csv``: the price list, ``;``-delimited, Latin-1.
* ``app/accounts[_<stamp>].json``: one JSON array of account objects (camelCase keys).
* ``app/usage_events[_<stamp>].jsonl``: metered usage events, one JSON object per line.

The data carries the dirt the pipeline must clean: padded text, blank codes, mixed-case
codes and ids, re-delivered duplicates (identical, or a later corrected copy), invoices of
accounts the app does not know; and about 0.5 % of rows the row validation rejects (a
non-numeric amount, an impossible date or timestamp, an empty required id).

Everything is derived from ``random.Random(seed)`` and the stamp, never the wall clock,
so the same arguments give byte-identical files, the workbook included: openpyxl stamps
the save time into ``docProps/core.xml`` and the zip entries, so the workbook is saved to
a temporary file and re-packed with fixed timestamps. The writers stream (CSV, JSON lines,
the JSON array and openpyxl's write-only workbook); only a small window of recent rows is
kept to re-deliver as duplicates.

    python -m demo.client2 /tmp/raw/client2 --rows 2000 --seed 11 --stamp 20260105
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
import shutil
import zipfile
from collections import deque
from pathlib import Path

import openpyxl

DEFAULT_EXPORT_DATE = dt.date(2026, 1, 5)
# Fixed timestamp written into the workbook properties and its zip entries.
_XLSX_TIME = dt.datetime(2026, 1, 1, 0, 0, 0)

INVOICE_HEADER = [
    "Invoice No",
    "Account ID",
    "Plan Code",
    "Invoice Date",
    "Due Date",
    "Seats",
    "Amount",
    "Currency",
    "Status",
    "Auto Renew",
]
PLAN_HEADER = ["PlanCode", "Plan Name", "Tier", "Monthly Price", "Billing Period", "Active"]

# code, name, tier, monthly price, billing period, active
PLANS = [
    ("STARTER", "Starter", "basic", "29.00", "monthly", "yes"),
    ("TEAM", "Team", "standard", "79.00", "monthly", "yes"),
    ("TEAM_ANNUAL", "Team (annual)", "standard", "69.00", "annual", "yes"),
    ("BUSINESS", "Business", "premium", "199.00", "monthly", "yes"),
    ("ENTERPRISE", "Enterprise", "premium", "899.00", "annual", "yes"),
    ("BASICO_LATAM", "Básico LATAM", "basic", "19.00", "monthly", "yes"),
    ("EQUIPE_FR", "Équipe (France)", "standard", "75.00", "monthly", "yes"),
    ("LEGACY_PRO", "Pro (legacy)", "standard", "49.00", "monthly", "no"),
]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "BR", "CA", "AU", "ES", "SE", "MX"]
SEGMENTS = ["SMB", "Mid-Market", "Enterprise"]
NAME_A = ["Blue", "North", "Bright", "Quantum", "Silver", "Urban", "Green", "Rapid", "Nova", "Atlas"]
NAME_B = ["Harbor", "Peak", "Pixel", "Forge", "Leaf", "Signal", "Orbit", "Bridge", "Cloud", "Works"]
NAME_C = ["Ltd", "Inc", "GmbH", "SAS", "BV", "LLC", "Co"]
EVENT_TYPES = [
    "api_call",
    "api_call",
    "api_call",
    "login",
    "login",
    "report_export",
    "seat_added",
    "storage_gb",
]
FEATURES = ["dashboard", "api", "exports", "integrations", "admin"]
STATUSES = ["Paid", "Paid", "Paid", "Open", "Overdue", "Void"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP"]
REJECT_RATIO = 0.005


def generate(incoming_root: Path, rows: int = 2000, seed: int = 11, stamp: str | None = None) -> list[Path]:
    """Write client2's files into ``incoming_root/<system>/`` and return their paths.

    ``rows`` is the number of usage events (the largest file); the other files scale
    from it: ``rows // 2`` invoices, ``max(20, rows // 20)`` accounts, the plan list.
    Duplicates are delivered on top. ``stamp`` (``YYYYMMDD``) is the export date and the
    file name suffix; without it the files carry no suffix and the export date is
    2026-01-05.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if stamp is None:
        export_date, suffix = DEFAULT_EXPORT_DATE, ""
    else:
        if not re.fullmatch(r"\d{8}", stamp):
            raise ValueError(f"stamp must be YYYYMMDD, got {stamp!r}")
        export_date, suffix = dt.datetime.strptime(stamp, "%Y%m%d").date(), f"_{stamp}"
    incoming_root = Path(incoming_root)
    rng = random.Random(seed)
    n_accounts = max(20, rows // 20)
    n_invoices = max(10, rows // 2)
    account_ids = [f"ACC-{i:05d}" for i in range(1, n_accounts + 1)]
    plan_codes = [p[0] for p in PLANS]

    billing = incoming_root / "billing"
    app = incoming_root / "app"
    billing.mkdir(parents=True, exist_ok=True)
    app.mkdir(parents=True, exist_ok=True)
    paths = [
        _write_invoices(
            billing / f"invoices{suffix}.xlsx", rng, n_invoices, export_date, account_ids, plan_codes
        ),
        _write_plans(billing / f"plans{suffix}.csv", rng),
        _write_accounts(app / f"accounts{suffix}.json", rng, account_ids, export_date),
        _write_events(app / f"usage_events{suffix}.jsonl", rng, rows, export_date, account_ids),
    ]
    return paths


# ---------------------------------------------------------------- helpers
def _rejects(rng: random.Random, n: int, kinds: list[str]) -> dict[int, str]:
    """Row index -> kind of invalidity, about REJECT_RATIO of n.

    At least one from 100 rows on; none below, so a tiny demo file stays within its
    reject policy (one bad row in 20 would be 5 %).
    """
    count = round(n * REJECT_RATIO)
    if count == 0 and n >= 100:
        count = 1
    positions = sorted(rng.sample(range(n), count))
    return {pos: kinds[i % len(kinds)] for i, pos in enumerate(positions)}


def _messy_code(rng: random.Random, code: str) -> str:
    """A code as an operator typed it: sometimes lower case, sometimes padded."""
    r = rng.random()
    if r < 0.04:
        return code.lower()
    if r < 0.07:
        return f" {code} "
    if r < 0.09:
        return code.title()
    return code


def _impossible_date(rng: random.Random, year: int) -> str:
    return rng.choice([f"{year}-02-30", f"{year}-13-01", f"{year}-04-31", f"{year}-00-10"])


# ---------------------------------------------------------------- billing: invoices
def _write_invoices(
    path: Path,
    rng: random.Random,
    n: int,
    export_date: dt.date,
    account_ids: list[str],
    plan_codes: list[str],
) -> Path:
    rejects = _rejects(rng, n, ["amount", "date", "id", "amount", "date"])
    numbers = rng.sample(range(1, 3 * n + 1), n)  # overlaps across seeds: re-billed invoices
    wb = openpyxl.Workbook(write_only=True)
    wb.properties.creator = "billing-export"
    wb.properties.created = _XLSX_TIME
    ws = wb.create_sheet("Invoices")
    ws.append(["Billing export: invoices"])
    ws.append([f"Exported {export_date.isoformat()} (amounts excl. tax)"])
    ws.append(INVOICE_HEADER)
    recent: deque[list] = deque(maxlen=50)
    for i in range(n):
        number = f"INV-{numbers[i]:07d}"
        # about 1 % of invoices belong to accounts the app does not know
        unknown = rng.random() < 0.01
        account = f"ACC-9{rng.randint(0, 9999):04d}" if unknown else rng.choice(account_ids)
        plan = rng.choice(plan_codes)
        invoice_date = export_date - dt.timedelta(days=rng.randint(1, 120))
        due_date = invoice_date + dt.timedelta(days=rng.choice([14, 30, 30, 45]))
        seats = rng.randint(1, 250)
        amount = round(seats * rng.uniform(5, 60), 2)
        row = [
            _messy_code(rng, number) if rng.random() < 0.3 else number,
            _messy_code(rng, account),
            "" if rng.random() < 0.03 else _messy_code(rng, plan),
            invoice_date,
            "" if rng.random() < 0.02 else due_date.strftime("%d.%m.%Y"),
            seats,
            amount,
            "" if rng.random() < 0.02 else _messy_code(rng, rng.choice(CURRENCIES)),
            _messy_code(rng, rng.choice(STATUSES)),
            rng.choice(["Yes", "No", "yes", "NO", ""]),
        ]
        kind = rejects.get(i)
        if kind == "amount":
            row[6] = rng.choice(["N/A", "12,50", "1.234.56", "tbd"])
        elif kind == "date":
            row[3] = _impossible_date(rng, invoice_date.year)
        elif kind == "id":
            row[0] = None
        ws.append(row)
        if kind is None:
            recent.append(row)
        r = rng.random()
        if recent and r < 0.01:  # re-exported identical line
            ws.append(list(rng.choice(recent)))
        elif recent and r < 0.02:  # a later corrected copy: the status moved on
            copy = list(rng.choice(recent))
            copy[8] = "Paid"
            ws.append(copy)
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    _repack_deterministic(tmp, path)
    tmp.unlink()
    return path


def _repack_deterministic(src: Path, dst: Path) -> None:
    """Copy the workbook zip entry by entry with fixed timestamps and modified date."""
    stamp = _XLSX_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=_XLSX_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if item.filename == "docProps/core.xml":
                xml = zin.read(item).decode("utf-8")
                xml = re.sub(
                    r"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rf"\g<1>{stamp}\g<2>", xml
                )
                zout.writestr(info, xml.encode("utf-8"))
            else:
                with zin.open(item) as fin, zout.open(info, "w") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)


# ---------------------------------------------------------------- billing: plans
def _write_plans(path: Path, rng: random.Random) -> Path:
    with path.open("w", encoding="latin-1", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(PLAN_HEADER)
        for code, name, tier, price, period, active in PLANS:
            if code == "TEAM":
                code, name = "team", f"  {name} "  # mixed case and padded
            if code == "LEGACY_PRO":
                tier = ""  # blank code
            writer.writerow([code, name, tier, price, period, active])
        # the price list repeats a plan, its code padded and in mixed case (the later row wins)
        code, name, tier, price, period, active = PLANS[rng.randrange(len(PLANS))]
        writer.writerow([f" {code.title()} ", name, tier.upper(), price, period, active.upper()])
    return path


# ---------------------------------------------------------------- app: accounts
def _write_accounts(path: Path, rng: random.Random, account_ids: list[str], export_date: dt.date) -> Path:
    rejects = _rejects(rng, len(account_ids), ["id", "date"])
    recent: deque[dict] = deque(maxlen=20)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("[\n")
        first = True

        def emit(obj: dict) -> None:
            nonlocal first
            fh.write(("" if first else ",\n") + json.dumps(obj, ensure_ascii=False))
            first = False

        for i, account in enumerate(account_ids):
            name = f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {rng.choice(NAME_C)}"
            signup = export_date - dt.timedelta(days=rng.randint(30, 1500))
            country = rng.choice(COUNTRIES)
            obj = {
                "accountId": _messy_code(rng, account),
                "companyName": f"  {name}" if rng.random() < 0.05 else name,
                "countryCode": "" if rng.random() < 0.03 else _messy_code(rng, country),
                "segment": None if rng.random() < 0.03 else _messy_code(rng, rng.choice(SEGMENTS)),
                "signupDate": signup.isoformat(),
                "isActive": rng.random() < 0.9,
            }
            # the small file gets each kind of dirt at least once, whatever the seed
            dirt = i % 25
            if dirt == 3:
                obj["countryCode"] = ""
            elif dirt == 5:
                obj["accountId"] = account.lower()
            elif dirt == 9:
                obj["companyName"] = f" {name}  "
            elif dirt == 11:
                obj["segment"] = None
            kind = rejects.get(i)
            if kind == "id":
                obj["accountId"] = ""
            elif kind == "date":
                obj["signupDate"] = _impossible_date(rng, signup.year)
            emit(obj)
            if kind is None:
                recent.append(obj)
            if recent and (dirt == 17 or rng.random() < 0.02):  # the app re-sends an account, renamed
                copy = dict(rng.choice(recent))
                copy["companyName"] = copy["companyName"].strip() + " (renamed)"
                emit(copy)
        fh.write("\n]\n")
    return path


# ---------------------------------------------------------------- app: usage events
def _write_events(
    path: Path, rng: random.Random, n: int, export_date: dt.date, account_ids: list[str]
) -> Path:
    rejects = _rejects(rng, n, ["ts", "id", "account", "ts"])
    start = dt.datetime.combine(export_date, dt.time()) - dt.timedelta(days=7)
    recent: deque[str] = deque(maxlen=100)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for i in range(n):
            event_type = rng.choice(EVENT_TYPES)
            ts = start + dt.timedelta(seconds=rng.randrange(7 * 86400))
            quantity = {"api_call": rng.randint(1, 500), "storage_gb": rng.randint(1, 50)}.get(event_type, 1)
            obj = {
                "eventId": f"evt_{rng.getrandbits(48):012x}",
                "accountId": _messy_code(rng, rng.choice(account_ids)),
                "eventType": f" {event_type.upper()} " if rng.random() < 0.03 else event_type,
                "eventTs": ts.isoformat(sep="T" if rng.random() < 0.8 else " "),
                "quantity": quantity,
                "feature": None if rng.random() < 0.1 else rng.choice(FEATURES),
            }
            if rng.random() < 0.02:
                obj["eventId"] = str(obj["eventId"]).upper()  # mixed-case id
            kind = rejects.get(i)
            if kind == "ts":
                obj["eventTs"] = f"{_impossible_date(rng, ts.year)}T{ts:%H:%M:%S}"
            elif kind == "id":
                obj["eventId"] = None
            elif kind == "account":
                obj["accountId"] = ""
            line = json.dumps(obj, ensure_ascii=False)
            fh.write(line + "\n")
            if kind is None:
                recent.append(line)
            if recent and rng.random() < 0.015:  # at-least-once delivery: exact duplicate
                fh.write(rng.choice(recent) + "\n")
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("incoming_root", type=Path)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--stamp", default=None)
    args = parser.parse_args()
    for written in generate(args.incoming_root, args.rows, args.seed, args.stamp):
        print(written)
