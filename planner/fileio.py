"""File helpers: every output is written to a temporary file next to its target, then renamed.

An interrupted run therefore never leaves a half-written plan, map or manifest behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as GDAL refuse to overwrite; give them a fresh name
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json(target: str | Path, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_with(target: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `target` (for pandas, openpyxl, matplotlib, GDAL)."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def spreadsheet_text(value: Any) -> Any:
    """Text a spreadsheet will not run as a formula: a name like `=HYPERLINK(...)` gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and value != "-":
        return "'" + value
    return value


def write_csv(frame: pd.DataFrame, target: str | Path) -> Path:
    """A UTF-8 CSV that Excel opens safely: text cells that look like formulas are quoted (see spreadsheet_text)."""
    safe = frame.copy()
    for column in safe.select_dtypes(include=["object", "string"]).columns:
        safe[column] = safe[column].map(spreadsheet_text)
    return write_with(
        target, lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    )
