"""The benchmark's data: client1's files at any size (kept between runs), the same file
ten times over, the next day's delivery, and the warehouse and incoming folders a run
starts from; 500 synthetic clients for the parse steps."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmarks.common import LANDING, SALES, WORK, client1, reset_database, run_step


def generate(rows: int) -> dict[str, Path]:
    """The six client1 files for ``rows`` sales lines, generated once and kept."""
    from demo.client1 import SYSTEM_OF, file_name
    from demo.client1 import generate as write

    folder = WORK / "data" / str(rows)
    done = folder / ".done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write(folder, rows=rows)
        done.touch()
    return {logical: folder / system / file_name(logical) for logical, system in SYSTEM_OF.items()}


def ten_times(src: Path) -> Path:
    """``src`` with its lines ten times over (one header), made by copying and kept while
    ``src`` is the same file: the convert memory check at 10x the rows without
    generating them."""
    dest = src.parent.parent.with_name(f"{src.parent.parent.name}x10") / src.name
    done = dest.with_name(".done")
    stat = src.stat()
    source_id = f"{stat.st_size} {stat.st_mtime_ns}"
    if not (done.exists() and done.read_text() == source_id):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with src.open("rb") as source, dest.open("wb") as out:
            out.write(source.readline())
            start = source.tell()
            source.seek(-1, os.SEEK_END)
            newline = b"" if source.read(1) == b"\n" else b"\n"  # a last line without one
            for _ in range(10):
                source.seek(start)
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)
                out.write(newline)
        done.write_text(source_id)
    return dest


# The column the next day changes in every hundredth row of each reference file (a value
# silver keeps as delivered, so the change reaches silver), and how.
CHANGED_COLUMN = {
    "cust_info": ("cst_lastname", lambda v: v.strip() + "-Next"),
    "prd_info": ("prd_nm", lambda v: v.strip() + " II"),
    "CUST_AZ12": ("GEN", lambda v: "Male" if v.strip()[:1].upper() == "F" else "Female"),
    "LOC_A101": ("CNTRY", lambda v: "France" if v.strip() != "France" else "Germany"),
    "PX_CAT_G1V2": ("SUBCAT", lambda v: v.strip() + " II"),
}
CHANGE_EVERY = 100  # 1% of the reference rows change from one day to the next


def next_delivery(files: dict[str, Path]) -> dict[str, Path]:
    """The next day's delivery of a client whose reference files come in full every day:
    the customers, products and ERP tables again, with 1% of their rows changed (every
    hundredth row, in the column of ``CHANGED_COLUMN``), and the sales lines ordered in
    the latest month the files hold (a daily delivery adds recent orders)."""
    folder = WORK / "next"
    shutil.rmtree(folder, ignore_errors=True)
    out = {}
    for logical, src in files.items():
        dest = folder / src.parent.name / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if logical == SALES:
            with src.open() as f:
                header, lines = f.readline(), f.readlines()
            month = max(line.split(",")[3][:6] for line in lines if line.split(",")[3][:2] == "20")
            with dest.open("w") as f:
                f.write(header)
                f.writelines(line for line in lines if line.split(",")[3][:6] == month)
        else:
            change_rows(src, dest, logical, {CHANGE_EVERY // 2})
        out[logical] = dest
    return out


def change_rows(src: Path, dest: Path, logical: str, residues: set[int]) -> None:
    """``src`` written to ``dest`` with the rows whose number (from 0) leaves one of
    ``residues`` over ``CHANGE_EVERY`` changed, in the column of ``CHANGED_COLUMN``."""
    import csv

    column, change = CHANGED_COLUMN[logical]
    with src.open(newline="") as f, dest.open("w", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g, lineterminator="\n")
        names = next(reader)
        writer.writerow(names)
        at = names.index(column)
        for number, row in enumerate(reader):
            if number % CHANGE_EVERY in residues and len(row) > at:
                row[at] = change(row[at])
            writer.writerow(row)


def later_day(day: int) -> dict[str, Path]:
    """The delivery of a later day of history (``day`` > 2), and new sales lines: the next
    day's lines as new orders (``-<day>`` after each order number) ``day - 2`` months
    later, so the fact table grows by a day's lines each day, as a client's does. The
    reference files: on day 3 the next day's as they are (a snapshot delivered again,
    unchanged); from day 4 another 1% of their rows changed each day (the rows ``day``
    after the next day's in every hundred), so each later day changes as much as the next
    day did."""
    folder = WORK / f"day{day}"
    shutil.rmtree(folder, ignore_errors=True)
    out = {}
    changed = {(CHANGE_EVERY // 2 + later) % CHANGE_EVERY for later in range(4, day + 1)}
    for src in sorted((WORK / "next").rglob("*.csv")):
        dest = folder / src.parent.name / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.stem != SALES and not changed:
            shutil.copyfile(src, dest)
        elif src.stem != SALES:
            change_rows(src, dest, src.stem, changed)
        else:
            with src.open() as f, dest.open("w") as g:
                g.write(f.readline())
                for line in f:
                    fields = line.rstrip("\n").split(",")
                    fields[0] = f"{fields[0]}-{day}"
                    for at in (3, 4, 5):  # order, ship and due dates, yyyymmdd
                        fields[at] = _months_later(fields[at], day - 2)
                    g.write(",".join(fields) + "\n")
        out[src.stem] = dest
    return out


def _months_later(yyyymmdd: str, months: int) -> str:
    """A yyyymmdd date ``months`` later (the day kept, at most the 28th); else as it is."""
    if len(yyyymmdd) != 8 or not yyyymmdd.isdigit() or yyyymmdd[:2] != "20":
        return yyyymmdd
    year, month = divmod(int(yyyymmdd[:4]) * 12 + int(yyyymmdd[4:6]) - 1 + months, 12)
    return f"{year:04d}{month + 1:02d}{min(int(yyyymmdd[6:]), 28):02d}"


def prepare_warehouse(dsn: str) -> None:
    """Tools + client1 schemas, bronze tables, and the baseline tables."""
    import psycopg

    from include.etl.warehouse.migrations import migrate

    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, [client1()])
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_baseline")
        _, spec = client1().file(SALES)
        columns = ", ".join(f'"{c.source}" text' for c in spec.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS bench_baseline.csv_sales ({columns})")


def files_in_incoming(files: dict[str, Path], admin: str, db: str, dsn: str) -> dict:
    """An empty, migrated warehouse and the day's files in client1's incoming folders:
    where a whole run starts. A deployed warehouse's schemas exist before the day's files
    arrive, so the migration (once per deployment or release) is timed on its own."""
    from include.etl.ingest.landing import Landing

    reset_database(admin, db)
    migration = run_step("migrate", {"dsn": dsn})
    shutil.rmtree(LANDING, ignore_errors=True)
    for path in files.values():
        incoming = Landing(LANDING).raw("client1", path.parent.name, "incoming")
        incoming.mkdir(parents=True, exist_ok=True)
        copied = Path(shutil.copy(path, incoming / path.name))
        os.utime(copied, (copied.stat().st_mtime - 3600,) * 2)  # its sender finished long ago
    return migration


SYNTHETIC_TEMPLATE = "bench_retail_8_files"


def synthetic_clients(folder: Path, count: int = 500) -> None:
    """``count`` client files of 8 files each in ``folder``/clients, and the SQL in
    ``folder``/sql: the ETL_CLIENTS_DIR and ETL_SQL_DIR of the parse and waiting steps.

    Each client is a tenant as the platform onboards one at scale: client1's file (a
    name, owners, alerts and a template), naming ``bench_retail_8_files``, a template of
    client1's with two more ERP files (its SQL is client1's template's)."""
    import yaml

    from include.etl.config import CLIENTS_DIR, SQL_DIR

    sql = folder / "sql"
    (sql / "clients").mkdir(parents=True)
    (sql / "tools").symlink_to(SQL_DIR / "tools")
    (sql / "templates").mkdir()
    for template in (SQL_DIR / "templates").iterdir():
        (sql / "templates" / template.name).symlink_to(template)
    base = yaml.safe_load((CLIENTS_DIR / "client1.yaml").read_text())
    source = SQL_DIR / "templates" / base["template"]
    bench = sql / "templates" / SYNTHETIC_TEMPLATE
    bench.mkdir()
    for part in source.iterdir():
        if part.is_dir():
            (bench / part.name).symlink_to(part)
    settings = yaml.safe_load((source / "template.yaml").read_text())
    erp = settings["sources"][1]["files"]
    for extra in ("EXTRA_A", "EXTRA_B"):
        erp.append({**erp[0], "name": extra, "pattern": rf"{extra}\.csv", "bronze_table": extra.lower()})
    (bench / "template.yaml").write_text(yaml.safe_dump(settings))

    folder = folder / "clients"
    folder.mkdir()
    shutil.copy(CLIENTS_DIR / "_defaults.yaml", folder / "_defaults.yaml")
    for i in range(count):
        client = f"bench{i:03d}"
        text = yaml.safe_dump({**base, "client": client, "template": SYNTHETIC_TEMPLATE})
        (folder / f"{client}.yaml").write_text(text)
