"""SQL templates: a client's SQL files found on a search path and rendered with its names.

A client of a known shape takes its SQL from a template, ``sql/templates/<template>/``
(``migrations/``, ``silver/``, ``gold/``, ``views/`` and ``template.yaml``), in which no
schema name is literal: a file says ``{{ silver }}.crm_cust_info`` and is rendered with
the client's names (the variables of ``variables``). Its own folder,
``sql/clients/<client>/``, comes first on the search path: a file there overrides the
template's file of the same path, and a client without a template has only that folder.

The DAG renders step files with Airflow's templating (the same variables as
``user_defined_macros``, the same search path as ``template_searchpath``), so the task
log and the UI's "Rendered Template" show the real names; ``render`` here gives the same
text for migrations, tests and scripts. Both use Jinja with ``StrictUndefined`` (a
misspelt variable fails) and keep the file's trailing newline.

``created_tables`` reads what a set of migrations creates, for the config's contract
checks: every step's target must be a table the migrations create, with a
``dwh_batch_id`` column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path

LAYER_VARIABLES = ("bronze", "silver", "gold")


def variables(client: str) -> dict[str, str]:
    """What a template may name: the client and its three layer schemas."""
    return {"client": client, **{layer: f"{layer}_{client}" for layer in LAYER_VARIABLES}}


@lru_cache(maxsize=256)
def _environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML: the names are validated identifiers
    )


def find(search_path: Sequence[str | os.PathLike[str]], relpath: str) -> Path | None:
    """The first file ``relpath`` on the search path, as Jinja's ``FileSystemLoader`` (the
    DAG's and ``render``'s) finds it: a regular file, and a name with ``..`` finds
    nothing; or None."""
    try:
        pieces = split_template_path(relpath)
    except jinja2.TemplateNotFound:
        return None
    for folder in search_path:
        path = Path(folder, *pieces)
        if path.is_file():
            return path
    return None


def render(search_path: list[Path], relpath: str, names: dict[str, str]) -> str:
    """The text of the file ``relpath`` (first on the search path), rendered with ``names``."""
    return _environment(tuple(search_path)).get_template(relpath).render(names)


def render_text(text: str, names: dict[str, str]) -> str:
    """A template's text rendered with ``names`` (a migration file)."""
    return (
        jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        .from_string(text)
        .render(names)
    )


# Rendered with placeholders, a migration's statements name each layer's schema by one
# marker, whatever the client: what it creates is then the same for every client.
_MARKERS = {"client": "__client__", **{layer: f"__{layer}__" for layer in LAYER_VARIABLES}}
_CREATE = re.compile(
    r"\bCREATE\s+(?:UNLOGGED\s+)?(TABLE|MATERIALIZED\s+VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"__(silver|gold)__\.\"?(\w+)\"?",
    re.IGNORECASE,
)
_ADD_BATCH_ID = re.compile(
    r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?__(silver|gold)__\.\"?(\w+)\"?\s+"
    r"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?dwh_batch_id\b",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"--[^\n]*")


def _body(text: str, start: int) -> str:
    """The parenthesised column list that follows ``start`` (empty if none)."""
    opening = text.find("(", start)
    if opening < 0 or text[start:opening].strip():
        return ""
    depth = 0
    for i in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[opening : i + 1]
    return text[opening:]


@lru_cache(maxsize=256)
def _created(files: tuple[tuple[Path, float], ...]) -> dict[str, dict[str, bool]]:
    found: dict[str, dict[str, bool]] = {"silver": {}, "gold": {}}
    for path, _ in files:
        text = _COMMENT.sub("", render_text(path.read_text(encoding="utf-8"), _MARKERS))
        for match in _CREATE.finditer(text):
            kind, layer, table = match.group(1).upper(), match.group(2).lower(), match.group(3)
            has_batch = "MATERIALIZED" not in kind and bool(
                re.search(r"\bdwh_batch_id\b", _body(text, match.end()))
            )
            found[layer][table] = found[layer].get(table, False) or has_batch
        for layer, table in _ADD_BATCH_ID.findall(text):
            if table in found[layer.lower()]:
                found[layer.lower()][table] = True
    return found


def created_tables(migrations: list[Path]) -> dict[str, dict[str, bool]]:
    """What the migrations create in the silver and gold schemas: ``{layer: {table:
    has_dwh_batch_id}}`` (a materialized view counts as a table without it). Read once
    per set of files (and again when one changes)."""
    return _created(tuple((p, p.stat().st_mtime) for p in migrations))
