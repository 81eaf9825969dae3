"""File helpers: every output is written to a temporary file next to its target, then renamed.

An interrupted run therefore never leaves a half-written plan, map or manifest behind. A whole output
folder is written the same way (output_folder): into a staging folder beside it, with a completion
record (outputs.json, every file with its sha256) written last, then moved into place; a lock file
beside the folder refuses a second run into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError

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
    """Write `text` (UTF-8) to `target` atomically: a reader sees the old file or the new one, never half."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json(target: str | Path, obj: Any) -> Path:
    """Write `obj` as indented UTF-8 JSON to `target` atomically."""
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


# ---------------------------------------------------------------- whole output folders

RECORD_NAME = "outputs.json"  # the completion record: written last, lists every file of the folder
RECORD_FORMAT = "kpu-planner-outputs"
RECORD_VERSION = 1
PLAN_MARKERS = (RECORD_NAME, "plan.json")  # a folder holding one of these is a planner output folder


def _lock_path(target: Path) -> Path:
    """The lock of an output folder; the same for every spelling of it (symlinks, `.`, relative paths)."""
    real = Path(os.path.realpath(target))
    return real.parent / f".{real.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _lock_owner(lock: Path) -> dict[str, Any] | None:
    """The pid and host in a lock file; None if it is unreadable (being written, or garbage)."""
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _is_stale(lock: Path, owner: dict[str, Any] | None) -> bool:
    """A lock left by a run that is gone: its pid no longer runs here, or unreadable for over a minute."""
    if owner is None:
        try:
            return time.time() - lock.stat().st_mtime > 60  # a run writes its lock within milliseconds
        except OSError:
            return True
    return owner.get("host") == socket.gethostname() and not _alive(owner["pid"])


def check_output_folder(target: str | Path, option: str = "--out", replace: bool = False) -> Path:
    """Refuse (InputError) an output folder that cannot be written, before any work: nothing is created.

    With `replace` (a run that replaces the folder's content), a folder holding files that are not an
    earlier output of the planner is refused too, so that `--out .` never deletes someone's files.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"{option} {target} is a file, not a folder", source=option)
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {target}: {ancestor} is a file, not a folder", source=option)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{option} {target}: cannot write in {ancestor}", source=option)
    if target.is_dir() and not os.access(target, os.R_OK | os.X_OK):
        raise InputError(f"{option} {target}: cannot read the folder", source=option)
    foreign = _foreign_files(target) if replace else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(
            f"{option} {target} holds files the planner did not write ({shown}); a run replaces the whole "
            "folder, so move them away or give a new or empty folder",
            source=option,
        )
    return target


def recorded_files(folder: Path) -> set[str] | None:
    """The files listed in the folder's completion record; None if it has no readable record."""
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = record.get("files") if isinstance(record, dict) else None
    return {str(name) for name in files} if isinstance(files, dict) else None


def _foreign_files(folder: Path) -> list[str]:
    """Files in `folder` that the planner did not write: not in its record, or all of them when there is no
    sign of the planner (no record, no plan.json). An older output with plan.json but no record is the
    planner's."""
    if not folder.is_dir():
        return []
    present = folder_files(folder)
    listed = recorded_files(folder)
    if listed is not None:
        return [name for name in present if name not in listed]
    if any((folder / marker).is_file() for marker in PLAN_MARKERS):
        return []
    return present or [p.name for p in folder.iterdir()]


@contextlib.contextmanager
def folder_lock(target: str | Path, option: str = "--out") -> Iterator[Path]:
    """Hold `.<name>.lock` beside `target` for the block; a second run into the same folder is refused.

    The lock names the pid and host of its run. A lock whose run is gone (its pid no longer runs on this
    host) is stale and taken over. Re-entrant in one process: a block inside a block of the same pid
    (a command holding its --out while write_outputs writes it) does not lock again.
    """
    target = check_output_folder(target, option)
    lock = _lock_path(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"{option} {target}: cannot create the folder ({err.strerror})", source=option
        ) from None
    content = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    owned = False
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if (
                owner is not None
                and owner["pid"] == os.getpid()
                and owner.get("host") == socket.gethostname()
            ):
                break  # this process holds it already
            if _is_stale(lock, owner):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            who = f"pid {owner['pid']} on {owner.get('host', '?')}" if owner else "another run"
            raise InputError(
                f"{option} {target} is being written by another planner run ({who}); wait for it to end, "
                f"or delete {lock} if that run is gone",
                source=option,
            ) from None
        except OSError as err:
            raise InputError(
                f"{option} {target}: cannot lock the folder ({err.strerror})", source=option
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        owned = True
        break
    else:
        raise InputError(f"{option} {target}: cannot take the lock {lock}", source=option)
    try:
        if owned:
            _recover_leftovers(target)
        yield target
    finally:
        if owned:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            for folder in created:  # a run that wrote nothing leaves no empty folders behind
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _recover_leftovers(target: Path) -> None:
    """Clean up after a run that was killed while it wrote `target` (the lock is ours, so it is gone)."""
    for partial in target.parent.glob(f".{glob_escape(target.name)}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    olds = sorted(target.parent.glob(f".{glob_escape(target.name)}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        os.replace(olds.pop(), target)  # killed between the two renames of the swap: put it back
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def glob_escape(name: str) -> str:
    """`name` with the glob characters * ? [ escaped, for Path.glob."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Every file below `folder` (relative, '/'-separated, sorted), except the record and hidden temp files."""
    names = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if (
            path.is_file()
            and relative != RECORD_NAME
            and not any(p.startswith(".") for p in relative.split("/"))
        ):
            names.append(relative)
    return sorted(names)


def write_record(folder: str | Path, names: Iterable[str] | None = None) -> Path:
    """Write outputs.json: the files `names` of `folder` (default: all) with their sha256. Written last, it
    marks a whole output."""
    folder = Path(folder)
    names = folder_files(folder) if names is None else sorted(n for n in set(names) if (folder / n).is_file())
    files = {name: file_sha256(folder / name) for name in names}
    return write_json(
        folder / RECORD_NAME, {"format": RECORD_FORMAT, "version": RECORD_VERSION, "files": files}
    )


def record_problems(folder: str | Path) -> list[str]:
    """Why `folder` is not a whole output: no record, or a file listed in it missing or changed ([] if whole)."""
    folder = Path(folder)
    record_path = folder / RECORD_NAME
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{record_path}: missing (the run did not finish)"]
    except (OSError, ValueError) as err:
        return [f"{record_path}: unreadable ({type(err).__name__})"]
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or record.get("format") != RECORD_FORMAT:
        return [f"{record_path}: not a completion record"]
    problems = []
    for name, digest in files.items():
        path = folder / str(name)
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(path) != digest:
            problems.append(f"{name}: changed since the run wrote it")
    return problems


def _link_or_copy(source: Path, staging: Path) -> None:
    """Put the files of `source` into `staging` (hard links: cheap, and our writers replace, never modify)."""
    for name in folder_files(source):
        destination = staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / name, destination)
        except OSError:
            shutil.copy2(source / name, destination)


@contextlib.contextmanager
def output_folder(target: str | Path, keep_existing: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield a staging folder beside `target`; when the block succeeds, move its files into place and write
    the completion record (outputs.json) last.

    The files go into `.<name>.partial-*` next to `target`. A failure or an interrupt deletes the staging
    folder: `target` keeps its previous content. Without `keep_existing` the run replaces the folder, which
    must be new, empty or an earlier output of the planner holding nothing else (so a run never deletes
    someone's files): the old folder is renamed away, the staging folder renamed onto `target`, the old one
    deleted. With `keep_existing` (reports and maps added to a plan folder) the staging folder starts with
    the files already there; the record is removed, the new and changed files moved in one by one, and the
    record written again listing what it listed before and what the run wrote (never a file of someone else).
    The folder itself is never renamed then, so it may be the working folder.
    """
    shown = Path(target)
    with folder_lock(shown, option):
        check_output_folder(shown, option, replace=not keep_existing)
        target = Path(os.path.realpath(shown))
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            if keep_existing and target.is_dir():
                _link_or_copy(target, staging)
                yield staging
                _merge_into_place(staging, target)
            else:
                yield staging
                write_record(staging)
                _swap_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _merge_into_place(staging: Path, target: Path) -> None:
    """Move the files of `staging` that are new or were rewritten into `target`, delete the recorded files the
    run removed (a map of a kabupaten no longer planned); then the record."""
    before = recorded_files(target) or set()
    removed = {name for name in before if not (staging / name).exists()}
    written = [
        name
        for name in folder_files(staging)
        if not (target / name).exists() or not os.path.samefile(staging / name, target / name)
    ]
    with contextlib.suppress(FileNotFoundError):
        (target / RECORD_NAME).unlink()  # until the record is back, readers see the folder is not whole
    for name in written:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target / name)
    for name in sorted(removed):
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
    write_record(target, (before - removed) | set(written))


def _swap_into_place(staging: Path, target: Path) -> None:
    staging.chmod(0o755)  # mkdtemp makes it private to its owner; an output folder is not
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old)  # a directory replaces an empty directory
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def refresh_record(folder: str | Path, added: Iterable[Path]) -> Path | None:
    """After files were added to an output folder (`planner map`), list them in its record too; None if the
    folder has no record."""
    folder = Path(folder)
    before = recorded_files(folder)
    if before is None:
        return None
    real = Path(os.path.realpath(folder))
    names = {Path(os.path.realpath(p)).relative_to(real).as_posix() for p in added}
    return write_record(folder, before | names)


def stored_path(plan_path: str | Path, stored: str) -> Path:
    """A path stored in a plan file: relative to the plan's folder (older plans: to where they were made)."""
    path = Path(stored)
    if path.is_absolute():
        return path
    beside = Path(os.path.normpath(Path(plan_path).parent / path))  # m1/../../x reads as ../x
    return beside if beside.exists() or not path.exists() else path
