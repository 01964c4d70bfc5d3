"""The README's layout section is the repository as it is: every path it names exists in
``git ls-files``, and every folder of the repository, every module of the product and
every test folder is named there."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return out.stdout.split()


def layout() -> list[str]:
    """The paths the README's layout block names, folders ending in ``/``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has a Layout section with a code block"
    paths, parents = [], []  # parents: (indent, folder) of the enclosing folders
    for line in block.group(1).splitlines():
        indent = len(line) - len(line.lstrip())
        names = re.match(r"\s*([^\s,]+(?:, [^\s,]+)*)", line)
        if not names:
            continue
        parents = [(i, f) for i, f in parents if i < indent]
        prefix = "".join(f for _, f in parents)
        listed = [n.strip() for n in names.group(1).split(",")]
        paths += [prefix + n for n in listed]
        if len(listed) == 1 and listed[0].endswith("/"):
            parents.append((indent, listed[0]))
    return paths


def exists(path: str, files: list[str]) -> bool:
    pattern = re.sub(r"<[^>]+>", "*", path)
    if pattern.endswith("/"):
        return any(fnmatch.fnmatch(f, pattern + "*") for f in files)
    return any(fnmatch.fnmatch(f, pattern) for f in files)


def test_every_path_the_layout_names_exists() -> None:
    files = tracked()
    missing = [p for p in layout() if not exists(p, files)]
    assert not missing, f"README layout names what git does not track: {missing}"


def test_the_layout_names_every_folder_module_and_test_folder() -> None:
    files, named = tracked(), layout()
    wanted = {f.split("/")[0] + "/" for f in files if "/" in f and not f.startswith(".")}
    wanted |= {f for f in files if f.startswith("include/etl/") and f.endswith(".py")}
    wanted |= {
        "/".join(f.split("/")[:2]) + "/"
        for f in files
        if f.startswith(("tests/", "include/")) and f.count("/") > 1
    }
    wanted = {w for w in wanted if not w.endswith("__init__.py")}
    unnamed = sorted(
        w for w in wanted if not any(fnmatch.fnmatch(w, re.sub(r"<[^>]+>", "*", n)) for n in named)
    )
    assert not unnamed, f"README layout does not name: {unnamed}"
