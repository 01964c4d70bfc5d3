"""Mutation check of the client SQL: does a test notice when one business rule breaks?

Each mutation in ``tests/mutation/<client>.yaml`` changes one rule of one SQL file (an
exact text, found exactly once, replaced). For each, in turn, the SQL folder is copied,
the mutation applied to the copy, and the mutation's tests run against the copy
(``ETL_SQL_DIR``) on a test warehouse of their own. A mutation is **caught** when a test
fails, **survived** when they all pass; one whose text is not found exactly once is an
**error** (the list is out of date). The working tree is never changed.

    make mutation                                  # every mutation, results in docs/mutations.md
    make mutation MUTATION_ARGS="--only client1"   # one client's list, or an id: --only <id>

Exit status 0 only when every mutation was caught.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LISTS = Path(__file__).resolve().parent
SQL = ROOT / "sql"
DOCS = ROOT / "docs" / "mutations.md"


@dataclass(frozen=True)
class Mutation:
    id: str
    client: str
    file: str  # relative to sql/
    find: str
    replace: str
    rule: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    verdict: str  # caught | survived | error
    detail: str
    seconds: float


def load(only: str | None = None) -> list[Mutation]:
    """The mutations of every list (``<client>.yaml``), or of one client, or one id."""
    mutations = []
    for path in sorted(LISTS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        default_tests = tuple(data.get("tests", []))
        for entry in data["mutations"]:
            mutations.append(
                Mutation(
                    id=entry["id"],
                    client=path.stem,
                    file=entry["file"],
                    find=entry["find"],
                    replace=entry.get("replace", ""),
                    rule=entry["rule"],
                    tests=tuple(entry.get("tests", default_tests)),
                )
            )
    ids = [m.id for m in mutations]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        sys.exit(f"mutation ids must be unique: {', '.join(duplicated)}")
    if only:
        mutations = [m for m in mutations if only in (m.client, m.id)]
        if not mutations:
            sys.exit(f"no mutation or client named {only!r}")
    return mutations


def apply(mutation: Mutation, sql_dir: Path) -> str | None:
    """Apply the mutation to the copy in ``sql_dir``; the reason when it cannot be."""
    path = sql_dir / mutation.file
    if not path.is_file():
        return f"{mutation.file}: no such file"
    text = path.read_text(encoding="utf-8")
    found = text.count(mutation.find)
    if found != 1:
        return f"{mutation.file}: the text to change is found {found} times, not once"
    mutated = text.replace(mutation.find, mutation.replace)
    path.write_text(mutated, encoding="utf-8")
    return None


def _first_failure(output: str) -> str:
    """The first failed test in pytest's short summary (``-rf``)."""
    for line in output.splitlines():
        match = re.match(r"^(FAILED|ERROR) (\S+)", line)
        if match:
            return match.group(2).split("::", 1)[-1]
    return "(see the test output)"


def run_one(mutation: Mutation, database: str) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        sql_dir = Path(scratch) / "sql"
        shutil.copytree(SQL, sql_dir)
        problem = apply(mutation, sql_dir)
        if problem:
            return Outcome(mutation, "error", problem, time.monotonic() - started)
        env = dict(os.environ, ETL_SQL_DIR=str(sql_dir), WAREHOUSE_TEST_DB=database)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *mutation.tests],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    seconds = time.monotonic() - started
    if result.returncode == 1:
        return Outcome(mutation, "caught", _first_failure(result.stdout), seconds)
    if result.returncode == 0:
        return Outcome(mutation, "survived", "every test passed", seconds)
    tail = " ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
    return Outcome(mutation, "error", f"pytest exited {result.returncode}: {tail}", seconds)


def report(outcomes: list[Outcome], total_seconds: float) -> str:
    caught = sum(o.verdict == "caught" for o in outcomes)
    lines = [
        "# Mutation check of the client SQL",
        "",
        f"Last run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `make mutation` "
        f"({total_seconds:.0f} s). **{caught} of {len(outcomes)} mutations caught.**",
        "",
        "Each row changes one business rule of one SQL file (the lists are "
        "`tests/mutation/<client>.yaml`) and runs the tests named there against the "
        "mutated copy. *Caught* names the first test that failed.",
        "",
        "| mutation | file | rule broken | verdict | caught by |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        by = o.detail if o.verdict == "caught" else ""
        verdict = o.verdict if o.verdict == "caught" else f"**{o.verdict}**: {o.detail}"
        rule = o.mutation.rule.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| `{o.mutation.id}` | `{o.mutation.file}` | {rule} | {verdict} | `{by}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="one client's list, or one mutation id")
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    mutations = load(args.only)
    database = os.environ.get("MUTATION_TEST_DB", "warehouse_mutation")
    started = time.monotonic()
    outcomes = []
    for number, mutation in enumerate(mutations, start=1):
        outcome = run_one(mutation, database)
        outcomes.append(outcome)
        print(
            f"[{number}/{len(mutations)}] {outcome.verdict:8} {mutation.id} ({outcome.seconds:.1f} s)"
            + (f": {outcome.detail}" if outcome.verdict != "caught" else f" by {outcome.detail}"),
            flush=True,
        )
    text = report(outcomes, time.monotonic() - started)
    if not args.no_docs and not args.only:
        DOCS.write_text(text, encoding="utf-8")
        print(f"written {DOCS.relative_to(ROOT)}")
    left = [o for o in outcomes if o.verdict != "caught"]
    print(f"{len(outcomes) - len(left)} of {len(outcomes)} mutations caught")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
