"""The console's pages: server-rendered HTML, no script, no build step.

Jinja with autoescaping on: every value from the warehouse (file names, reasons, raw
records) is shown as text, never as markup. Links point into Airflow's UI (the run, the
red task, the DAG's trigger form) on the same server.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape


def _secs(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h" if value < 172800 else f"{value / 86400:.1f} days"


def _num(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _record(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
ENV.filters.update(secs=_secs, num=_num, when=_when, record=_record, u=lambda v: quote(str(v), safe=""))


def render(page: str, root: str, title: str, **context: Any) -> str:
    """A page as HTML; ``root``: where the console is mounted (links are built from it)."""
    return ENV.get_template(f"{page}.html").render(root=root, title=title, **context)


def chart(history: list[dict]) -> str:
    """Two small bar charts as inline SVG: each batch's duration (top) and rows loaded
    (bottom), a failed batch in red, so a slow or shrinking client shows at a glance."""
    if not history:
        return ""
    width, bar = 240, 240 / max(len(history), 1)
    top_s = max(float(h["seconds"] or 0) for h in history) or 1.0
    top_r = max(int(h["loaded"] or 0) for h in history) or 1
    bars = []
    for i, h in enumerate(history):
        colour = "#b3261e" if h["status"] == "FAILED" else "#3b6fd4"
        seconds, rows = float(h["seconds"] or 0), int(h["loaded"] or 0)
        hs, hr = 28 * seconds / top_s, 28 * rows / top_r
        x = i * bar
        label = f"{h['batch_id']} {h['status']}: {_secs(seconds)}, {rows:,} rows"
        bars.append(
            f'<rect x="{x:.1f}" y="{30 - hs:.1f}" width="{bar * 0.8:.1f}" height="{hs:.1f}" fill="{colour}">'
            f"<title>{html.escape(label)}</title></rect>"
            f'<rect x="{x:.1f}" y="{62 - hr:.1f}" width="{bar * 0.8:.1f}" height="{hr:.1f}" fill="#7aa36b">'
            f"<title>{html.escape(label)}</title></rect>"
        )
    return (
        f'<svg width="{width}" height="64" role="img" aria-label="last {len(history)} batches">'
        + "".join(bars)
        + "</svg>"
    )


def page_url(path: str, **params: Any) -> str:
    """``path`` with its query string (empty values left out)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path
