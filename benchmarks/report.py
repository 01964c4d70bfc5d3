"""The results of a run: the table printed as the run goes and at its end, the ratios,
and ``bench-results.json``."""

from __future__ import annotations

import json
from pathlib import Path

RATIOS = ("_vs_polars", "_vs_pandas", "_vs_adbc", "_vs_psql_copy", "_ratio_10x_rows", "_vs_first")


class Results:
    """The figures of one run (``values``, written as JSON) and the printed table."""

    def __init__(self, **values: object) -> None:
        self.values: dict = dict(values)
        self.table: list[tuple] = []

    def record(self, key: str, label: str, res: dict, n: int | None = None) -> dict:
        """A measured step under ``key``: seconds, rows, rows/s, peak memory; printed."""
        n = n if n is not None else res.get("rows")
        seconds = res["seconds"]
        self.values[key] = {
            "seconds": round(seconds, 3),
            "rows": n,
            "rows_per_s": round(n / seconds) if n and seconds else None,
            "peak_rss_mb": res.get("peak_rss_mb"),
        }
        self.table.append((label, seconds, n, res.get("peak_rss_mb")))
        print(f"  {label:<44} {seconds:8.2f} s", flush=True)
        return res

    def line(self, label: str, seconds: float, n: int | None = None, mb: float | None = None) -> None:
        """A line of the table that is no figure of its own."""
        self.table.append((label, seconds, n, mb))

    def finish(self, out: Path) -> int:
        """Print the table and the ratios, write the results file."""
        print()
        print(f"{'step':<48} {'seconds':>8} {'rows':>11} {'rows/s':>11} {'peak MB':>8}")
        for label, seconds, n, mb in self.table:
            rate = f"{n / seconds:,.0f}" if n and seconds else ""
            count = f"{n:,}" if n else ""
            print(f"{label:<48} {seconds:8.2f} {count:>11} {rate:>11} {mb or '':>8}")
        print()
        for key in sorted(
            k for k in self.values if k.endswith(RATIOS) or k.startswith(("parse_", "waiting_", "console_"))
        ):
            print(f"  {key:<36} {self.values[key]}")
        Path(out).write_text(json.dumps(self.values, indent=2) + "\n")
        print(f"\nwrote {out}")
        return 0
