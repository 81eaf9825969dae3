"""`planner batch` and the execution backends (issue 6): many scenarios, skip finished ones, same plans anywhere."""

from __future__ import annotations

import operator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from planner import cli
from planner.batch import BatchOptions, run_batch
from planner.commands.batch import register
from planner.errors import InputError
from planner.execution import Backend, run_jobs
from planner.pipeline import load_problem
from planner.plan import read_plan
from planner.validate import validate_plan

ROOT = Path(__file__).resolve().parents[1]
FAST_SOLVER = (
    "solver: {time_limit_s: 30, seed: SEED, deterministic: true, workers: 1, "
    "options: {seed_iterations: 500, solution_limit: 50}}"
)


def _scenario(folder: Path, name: str, seed: int = 1, kabupaten: str = "64.74") -> Path:
    """Bontang (the smallest kabupaten) with small deterministic search budgets, paths made absolute."""
    text = (ROOT / "scenarios" / "kaltim-2024.yaml").read_text(encoding="utf-8")
    text = text.replace("name: kaltim-2024", f"name: {name}").replace(
        "kabupaten: all", f'kabupaten: ["{kabupaten}"]'
    )
    text = text.replace("../networks", str(ROOT / "networks")).replace(
        "common/", f"{ROOT / 'scenarios/common'}/"
    )
    solver = FAST_SOLVER.replace("SEED", str(seed))
    text = "\n".join(solver if line.startswith("solver:") else line for line in text.splitlines()) + "\n"
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_jobs_give_the_same_results_in_this_process_and_in_a_process_pool():
    jobs = [5, 1, 4, 2, 3]
    inline = sorted(run_jobs(operator.mul, 10, jobs, Backend(workers=1)))
    assert inline == [(i, 10 * job) for i, job in enumerate(jobs)]
    assert sorted(run_jobs(operator.mul, 10, jobs, Backend(workers=2))) == inline
    assert list(run_jobs(operator.mul, 10, [], Backend(workers=2))) == []


def test_an_unreachable_dask_scheduler_is_an_input_error_naming_it():
    backend = Backend(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(InputError, match=r"tcp://127\.0\.0\.1:9"):
        list(run_jobs(operator.mul, 1, [1], backend))


def test_batch_solves_each_scenario_and_a_rerun_skips_the_finished_ones(tmp_path):
    first, second = _scenario(tmp_path, "bontang-a"), _scenario(tmp_path, "bontang-b", seed=2)
    out = tmp_path / "out"
    options = BatchOptions(out, time_limit_s=30, deterministic=True, backend=Backend(workers=1))
    rows = run_batch([first, second], options)
    assert [(r.scenario, r.status) for r in rows] == [("bontang-a", "solved"), ("bontang-b", "solved")]
    for row, path in zip(rows, (first, second), strict=True):
        plan = read_plan(out / row.scenario / "plan.json")
        assert plan.scenario.name == row.scenario
        assert validate_plan(plan, load_problem(path).expect, allow_unserved=True) == []
        assert row.problems == 0 and row.vehicles == plan.kpis.total.vehicles_used > 0
        assert (out / row.scenario / "map-kpu.html").is_file()
    summary = pd.read_csv(out / "batch-summary.csv")
    assert summary["scenario"].tolist() == ["bontang-a", "bontang-b"]
    solved_plan = (out / "bontang-a" / "plan.json").read_bytes()

    again = run_batch([first, second], options)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert [(r.vehicles, r.km, r.unserved) for r in again] == [(r.vehicles, r.km, r.unserved) for r in rows]

    second.write_text(second.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    assert [r.status for r in run_batch([first, second], options)] == ["skipped", "solved"]

    # --force, in a process pool: the same plan as solved in this process
    pooled = run_batch([first, second], replace(options, force=True, backend=Backend(workers=2)))
    assert [r.status for r in pooled] == ["solved", "solved"]
    assert (out / "bontang-a" / "plan.json").read_bytes() == solved_plan


def test_batch_reports_bad_scenarios_and_clashing_names_together(tmp_path, monkeypatch, capsys):
    good = _scenario(tmp_path, "bontang")
    twin_folder = tmp_path / "twin"
    twin_folder.mkdir()
    twin = _scenario(twin_folder, "bontang")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        good.read_text(encoding="utf-8").replace("kabupaten: [", "kabupaten: [64.99, "), "utf-8"
    )
    with pytest.raises(InputError) as error:
        run_batch([good, twin, broken], BatchOptions(tmp_path / "out"))
    text = str(error.value)
    assert "broken.yaml" in text and "'bontang' is used by" in text
    assert not (tmp_path / "out").exists()
    if "batch" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "batch"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["batch", str(good), str(twin), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "each scenario needs its own output folder" in capsys.readouterr().err


def test_batch_command_prints_a_summary_table(tmp_path):
    scenario = _scenario(tmp_path, "bontang-cli")
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    args = ["batch", str(scenario), "--out", str(tmp_path / "out"), "--deterministic", "--time-limit", "30"]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--workers", "1"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "bontang-cli" in result.output and "solved" in result.output
    again = runner.invoke(app, [*args, "--workers", "1"], env={"COLUMNS": "160"})
    assert again.exit_code == 0 and "skipped" in again.output and "1 scenario(s) skipped" in again.output
