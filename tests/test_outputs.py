"""Whole outputs or none (issue 16 §5): a run writes its folder into a staging folder and moves it into
place with a completion record (outputs.json) written last; a second run into a held folder is refused;
a bad --out fails before any work; `planner batch` trusts only the record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import planner.outputs
from planner import cli
from planner.batch import BatchOptions, run_batch
from planner.errors import InputError
from planner.fileio import RECORD_NAME, file_sha256, folder_files, folder_lock, record_problems
from planner.outputs import write_outputs
from planner.pipeline import load_problem, make_plan, search_settings

ROOT = Path(__file__).resolve().parents[1]
FAST_SOLVER = (
    "solver: {time_limit_s: 30, seed: 1, deterministic: true, workers: 1, "
    "options: {seed_iterations: 300, solution_limit: 30}}"
)


def bontang_scenario(folder: Path, name: str = "bontang") -> Path:
    """Bontang (the smallest kabupaten) with small deterministic search budgets, paths made absolute."""
    text = (ROOT / "scenarios" / "kaltim-2024.yaml").read_text(encoding="utf-8")
    text = text.replace("name: kaltim-2024", f"name: {name}").replace(
        "kabupaten: all", 'kabupaten: ["64.74"]'
    )
    text = text.replace("../networks", str(ROOT / "networks")).replace(
        "common/", f"{ROOT / 'scenarios/common'}/"
    )
    text = "\n".join(FAST_SOLVER if line.startswith("solver:") else line for line in text.splitlines()) + "\n"
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bontang(tmp_path_factory):
    """(scenario path, plan, inputs) of Bontang, solved once."""
    folder = tmp_path_factory.mktemp("bontang")
    path = bontang_scenario(folder)
    problem = load_problem(path)
    plan = make_plan(problem, search_settings(problem, 5.0, deterministic=True))
    return path, plan, problem.inputs


def run_cli(args: list[str]) -> int:
    """`planner ARGS` in this process; its exit code."""
    try:
        cli.main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def snapshot(folder: Path) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in [*folder_files(folder), RECORD_NAME]}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_outputs_end_with_a_record_of_every_file(bontang, tmp_path):
    _, plan, inputs = bontang
    written = write_outputs(plan, inputs, tmp_path / "out")
    record = json.loads((tmp_path / "out" / RECORD_NAME).read_text(encoding="utf-8"))
    assert sorted(record["files"]) == folder_files(tmp_path / "out")
    assert {"plan.json", "stops.csv", "map-kpu.html", "map-lanal.html", "schedule.png"} <= set(
        record["files"]
    )
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in written) == sorted(
        [*record["files"], RECORD_NAME]
    )
    assert record_problems(tmp_path / "out") == []
    assert leftovers(tmp_path) == []  # no staging folder, no lock


def test_a_failure_mid_write_leaves_the_previous_folder_intact(bontang, tmp_path, monkeypatch):
    _, plan, inputs = bontang
    out = tmp_path / "out"
    write_outputs(plan, inputs, out)
    before = snapshot(out)

    def broken_map(*args, **kwargs):
        assert any(Path(tmp_path).glob(".out.partial-*/plan.json"))  # plan.json of the new run is written
        raise OSError("disk full")

    monkeypatch.setattr(planner.outputs, "write_map", broken_map)
    other = plan.model_copy(update={"routes": plan.routes[:1]})
    with pytest.raises(OSError, match="disk full"):
        write_outputs(other, inputs, out)
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_a_failed_first_run_leaves_no_folder(bontang, tmp_path, monkeypatch):
    _, plan, inputs = bontang
    monkeypatch.setattr(
        planner.outputs, "write_map", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        write_outputs(plan, inputs, tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()  # not even the parent folder it made for the run


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_solve_keeps_the_previous_plan_and_the_next_run_recovers(
    signal_number, bontang, tmp_path
):
    scenario, plan, inputs = bontang
    out = tmp_path / "out"
    write_outputs(plan, inputs, out)
    before = snapshot(out)
    command = [
        sys.executable,
        "-m",
        "planner.cli",
        "solve",
        str(scenario),
        "--out",
        str(out),
        "--deterministic",
    ]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while not any(tmp_path.glob(".out.partial-*/plan.json")):
        assert run.poll() is None, run.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run.send_signal(signal_number)
    run.wait(timeout=60)
    assert snapshot(out) == before
    if signal_number == signal.SIGTERM:  # killed outright: no clean-up ran
        assert (tmp_path / ".out.lock").exists()  # the dead run's lock: stale
        assert any(tmp_path.glob(".out.partial-*"))
    else:  # Ctrl-C: the run cleans up after itself
        assert run.returncode != 0 and leftovers(tmp_path) == []
    write_outputs(
        plan.model_copy(update={"routes": plan.routes[:2]}), inputs, out
    )  # takes the stale lock over
    assert record_problems(out) == []
    assert len(json.loads((out / "plan.json").read_text(encoding="utf-8"))["routes"]) == 2
    assert leftovers(tmp_path) == []


def _write_lock(folder: Path, pid: int) -> Path:
    lock = folder.parent / f".{folder.name}.lock"
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname()}), encoding="utf-8")
    return lock


def test_a_second_run_into_a_held_folder_is_refused_before_it_solves(bontang, tmp_path, monkeypatch, capsys):
    scenario, plan, inputs = bontang
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _write_lock(out, holder.pid)
        with pytest.raises(InputError, match=f"another planner run .pid {holder.pid}"):
            write_outputs(plan, inputs, out)
        monkeypatch.setattr("planner.commands.solve.load_problem", lambda *a: pytest.fail("solved anyway"))
        assert run_cli(["solve", str(scenario), "--out", str(out)]) == 2
        assert "being written by another planner run" in capsys.readouterr().err
        assert lock.exists() and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    write_outputs(plan, inputs, out)  # the holder is gone: its lock is stale
    assert record_problems(out) == []


@pytest.mark.parametrize("make_out", ["file", "below_a_file", "foreign_folder"])
def test_a_bad_out_exits_2_before_any_work(make_out, bontang, tmp_path, monkeypatch, capsys):
    scenario = bontang[0]
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    out = {"file": tmp_path / "afile", "below_a_file": tmp_path / "afile" / "out"}.get(make_out)
    if make_out == "foreign_folder":  # someone's folder: a run never replaces it
        out = tmp_path / "documents"
        out.mkdir()
        (out / "letter.txt").write_text("keep me", encoding="utf-8")
        bontang_plan, inputs = bontang[1], bontang[2]
        with pytest.raises(InputError, match="the planner did not write"):
            write_outputs(bontang_plan, inputs, out)
        assert (out / "letter.txt").read_text(encoding="utf-8") == "keep me"
        return
    monkeypatch.setattr("planner.commands.solve.load_problem", lambda *a: pytest.fail("solved anyway"))
    assert run_cli(["solve", str(scenario), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_exits_2(bontang, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert run_cli(["solve", str(bontang[0]), "--out", str(locked / "out")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_report_and_map_into_a_plan_folder_keep_its_record_whole(bontang, tmp_path, monkeypatch):
    _, plan, inputs = bontang
    out = tmp_path / "out"
    write_outputs(plan, inputs, out)
    (out / "map-lanal.html").unlink()
    before = snapshot(out)
    monkeypatch.setattr(
        "planner.commands.report.write_map", lambda *a, **k: (_ for _ in ()).throw(OSError("full"))
    )
    with pytest.raises(OSError):
        run_cli(["report", str(out / "plan.json"), "--maps"])
    assert snapshot(out) == before  # the failed report changed nothing
    monkeypatch.undo()
    assert run_cli(["map", str(out / "plan.json"), "--audience", "lanal"]) == 0
    assert (out / "map-lanal.html").is_file()
    assert record_problems(out) == []


def test_batch_solves_again_a_case_whose_files_were_tampered_with(tmp_path):
    scenario = bontang_scenario(tmp_path, "bontang-batch")
    options = BatchOptions(out_dir=tmp_path / "batch", deterministic=True)
    [first] = run_batch([scenario], options)
    assert first.status == "solved" and first.trips > 1
    [again] = run_batch([scenario], options)
    assert again.status == "skipped" and again.trips == first.trips
    plan_path = tmp_path / "batch" / "bontang-batch" / "plan.json"
    raw = json.loads(plan_path.read_text(encoding="utf-8"))
    raw["routes"] = raw["routes"][:1]  # routes deleted: the summary must not believe it
    plan_path.write_text(json.dumps(raw), encoding="utf-8")
    assert record_problems(plan_path.parent) == ["plan.json: changed since the run wrote it"]
    [redone] = run_batch([scenario], options)
    assert redone.status == "solved" and redone.trips == first.trips
    (plan_path.parent / "map-kpu.html").unlink()
    [redone] = run_batch([scenario], options)
    assert redone.status == "solved"
    assert record_problems(plan_path.parent) == []


def test_the_same_scenario_gives_the_same_plan_bytes_by_relative_or_absolute_path(tmp_path, monkeypatch):
    bontang_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_cli(["solve", "bontang.yaml", "--out", "out", "--deterministic", "--time-limit", "5"]) == 0
    relative = (tmp_path / "out" / "plan.json").read_bytes()
    absolute = ["solve", str(tmp_path / "bontang.yaml"), "--out", str(tmp_path / "out")]
    assert run_cli([*absolute, "--deterministic", "--time-limit", "5"]) == 0
    assert (tmp_path / "out" / "plan.json").read_bytes() == relative
    stored = json.loads(relative)
    assert stored["scenario"]["path"] == "../bontang.yaml"
    assert not Path(stored["network"]).is_absolute()
    assert (tmp_path / "out" / stored["network"]).resolve() == (ROOT / "networks" / "kaltim").resolve()


def test_a_run_killed_between_the_two_renames_gets_its_folder_back(tmp_path):
    old = tmp_path / ".out.old-abc123"  # the previous folder, renamed away; the new one never arrived
    old.mkdir()
    (old / "plan.json").write_text("{}", encoding="utf-8")
    (tmp_path / ".out.partial-def456").mkdir()
    with folder_lock(tmp_path / "out"):
        assert (tmp_path / "out" / "plan.json").read_text(encoding="utf-8") == "{}"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- found by a hostile tester (issue 16 follow-up)


def test_a_run_refuses_to_replace_a_plan_folder_holding_someone_s_files(bontang, tmp_path):
    _, plan, inputs = bontang
    out = tmp_path / "out"
    write_outputs(plan, inputs, out)
    (out / "notes.txt").write_text("catatan petugas", encoding="utf-8")
    (out / "mine").mkdir()
    (out / "mine" / "keep.txt").write_text("simpan", encoding="utf-8")
    with pytest.raises(InputError, match=r"did not write \(mine/keep.txt, notes.txt\)"):
        write_outputs(plan, inputs, out)
    assert (out / "notes.txt").is_file() and (out / "mine" / "keep.txt").is_file()
    assert record_problems(out) == []


def test_report_into_the_working_folder_adds_its_files_and_lists_only_the_planner_s(
    bontang, tmp_path, monkeypatch
):
    _, plan, inputs = bontang
    out = tmp_path / "out"
    write_outputs(plan, inputs, out)
    (out / "mine.py").write_text("print('not the planner')\n", encoding="utf-8")
    monkeypatch.chdir(out)
    assert run_cli(["report", "plan.json", "--no-documents", "--maps"]) == 0
    assert Path.cwd() == out.resolve() and (out / "mine.py").is_file()  # the folder was not swapped away
    record = json.loads((out / RECORD_NAME).read_text(encoding="utf-8"))
    assert "mine.py" not in record["files"] and any(n.startswith("maps/map-") for n in record["files"])
    assert record_problems(out) == [] and leftovers(tmp_path) == []


def test_a_symlink_to_a_held_folder_is_held_too(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(real, holder.pid)
        for spelling in (tmp_path / "link", tmp_path / "link" / ".." / "real"):
            with pytest.raises(InputError, match="another planner run"), folder_lock(spelling):
                pass
    finally:
        holder.kill()
        holder.wait()
