"""Scenario files: one YAML file describes a whole planning run.

    name: kaltim-2024                      # letters, digits, '.', '_', '-' (used in output folder names)
    description: Whole province, published figures
    network: ../networks/kaltim            # network folder (or its network.gpkg)
    demand:                                # where voters and TPS per desa come from
      source: allocation                   # spread the published kabupaten figures over the desa
      figures: ../networks/kaltim/source/kpu_pilkada_2024.csv   # default: <network>/source/kpu_pilkada_2024.csv
      province_dpt: 2821202                # splits the DPT of kabupaten without a published figure
      kecamatan_dpt: common/kpu-kecamatan-dpt-2024.csv          # published kecamatan DPT to match (optional)
      weight: pemilu2024_tps               # a desa's share: its TPS at the Pemilu 2024, or `area` (old rule)
      desa_tps: ../networks/kaltim/source/desa_tps_pemilu2024.csv  # default: <network>/source/desa_tps_pemilu2024.csv
      elections: 2                         # elections held at every TPS that day
    # demand: {source: csv, path: my-dpt.csv, elections: 2}     # an officer's real desa_code,tps,dpt
    catalog: common/items.csv
    fleet: common/fleet-kaltim.yaml
    calendar: {timezone: Asia/Makassar, start: 2024-11-23T06:00:00+08:00,
               ppk_deadline: 2024-11-24T18:00:00+08:00, pps_deadline: 2024-11-25T18:00:00+08:00}
    kabupaten: all                         # or a list of codes ["64.11"]
    blocked_legs: []                       # leg ids, e.g. road:pps:64.07.01.2001-pps:64.07.01.2002
    solver: {time_limit_s: 30, seed: 1, deterministic: false, solution_limit: null, workers: 2}

Paths are relative to the scenario file. `load_scenario` reports every problem at once, each with its
file and field path; `load_inputs` loads what a solve needs (network with the blocked legs closed,
catalog, fleet and demand of the chosen kabupaten).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError, field_validator

from planner.catalog import Item, load_catalog
from planner.demand import (
    WEIGHT_AREA,
    WEIGHT_PEMILU2024_TPS,
    AllocationWeights,
    Demand,
    allocate_voters,
    build_demand,
    desa_of_network,
    read_desa_tps,
    read_kabupaten_figures,
    read_kecamatan_dpt,
    read_voters_csv,
)
from planner.errors import InputError
from planner.fleet import Fleet, check_fleet, expand_fleet, load_fleet_spec, pydantic_problems, read_yaml
from planner.network import Network, load_network, network_dir
from planner.nodes import is_hub, is_pps, kabupaten_of
from planner.settings import SearchSettings
from planner.vehicles import Assignment

DEFAULT_FIGURES = Path("source") / "kpu_pilkada_2024.csv"
DEFAULT_DESA_TPS = Path("source") / "desa_tps_pemilu2024.csv"
_KABUPATEN_CODE = re.compile(r"^\d{2}\.\d{2}$")

# Bounds of the numbers a scenario may hold. Each is far beyond any real plan and far below what breaks
# a solver or a list of that size (a typo such as 1e308 or 100000 is refused with its field named).
MAX_PROVINCE_DPT = 300_000_000  # Indonesia's whole DPT of 2024 is 204.8 million voters
MAX_TIME_LIMIT_S = 86_400  # a day per kabupaten; the whole province solves in minutes (BENCHMARKS.md)
MAX_SEED = 2**31 - 1  # PyVRP and OR-Tools take 32-bit seeds
MAX_WORKERS = 256  # no planning-office machine or cluster node has more cores
MAX_SOLUTION_LIMIT = 10_000_000  # OR-Tools solutions; the shipped scenarios use 300, 10 million is days
MAX_SEED_ITERATIONS = 10_000_000  # PyVRP iterations; the default is 5,000
MAX_HORIZON = timedelta(days=60)  # start to PPS deadline; the 2024 distribution took under two weeks
MAX_KABUPATEN = 600  # Indonesia has 514 kabupaten and kota
MAX_BLOCKED_LEGS = 100_000  # the whole Kaltim network has about 6,000 legs
MAX_TEXT = 2_000  # a description is a sentence or two, not a file
MAX_ASSIGN_RULES = 1_000  # a rule per fleet and area; Kaltim needs one or two
MAX_ASSIGNED_DESA = 100_000  # Indonesia has about 84,000 desa


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AllocationDemand(_Strict):
    source: Literal["allocation"]
    figures: Path | None = None
    province_dpt: int | None = Field(default=None, gt=0, le=MAX_PROVINCE_DPT)
    kecamatan_dpt: Path | None = None
    weight: Literal["pemilu2024_tps", "area"] = WEIGHT_PEMILU2024_TPS
    desa_tps: Path | None = None  # method pemilu2024_tps: TPS per desa at the Pemilu 2024
    # a kelurahan counts this many times a desa of the same area; 100 would already put every voter in town
    kelurahan_factor: float = Field(default=AllocationWeights.kelurahan_factor, gt=0, le=100)
    area_exponent: float = Field(default=AllocationWeights.area_exponent, ge=0, le=1)
    elections: int = Field(default=2, ge=1, le=10)


class CsvDemand(_Strict):
    source: Literal["csv"]
    path: Path
    elections: int = Field(default=2, ge=1, le=10)


DemandSpec = Annotated[AllocationDemand | CsvDemand, Field(discriminator="source")]


class Calendar(_Strict):
    timezone: str = "Asia/Makassar"
    start: datetime
    ppk_deadline: datetime
    pps_deadline: datetime

    @field_validator("start", "ppk_deadline", "pps_deadline")
    @classmethod
    def _plausible_year(cls, value: datetime) -> datetime:
        if not 1970 <= value.year <= 2200:
            raise ValueError(f"year {value.year} is out of range (1970-2200)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Makassar)") from None
        return value

    def local(self, moment: datetime) -> datetime:
        """`moment` in the calendar's time zone; a time without offset is read as local time."""
        zone = ZoneInfo(self.timezone)
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)

    @property
    def start_local(self) -> datetime:
        return self.local(self.start)

    @property
    def ppk_deadline_local(self) -> datetime:
        return self.local(self.ppk_deadline)

    @property
    def pps_deadline_local(self) -> datetime:
        return self.local(self.pps_deadline)


# solver.options: the search settings a scenario may tune (planner.search.SearchSettings); the others
# are fields of `solver` itself
SOLVER_OPTION_NAMES = tuple(
    f.name
    for f in dataclasses.fields(SearchSettings)
    if f.name not in ("time_limit_s", "seed", "deterministic")
)
_OPTION_BOUNDS = {
    "seed_iterations": MAX_SEED_ITERATIONS,
    "solution_limit": MAX_SOLUTION_LIMIT,
    "stall_iterations": MAX_SEED_ITERATIONS,
    "stall_solutions": MAX_SOLUTION_LIMIT,
}


def _solver_options(value: dict[str, Any]) -> dict[str, Any]:
    """Only known settings, of the right type and in bounds, so that the solve cannot fail on them later."""
    unknown = [str(k) for k in value if k not in SOLVER_OPTION_NAMES]
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} (known: {', '.join(SOLVER_OPTION_NAMES)})"
        )
    for name, bound in _OPTION_BOUNDS.items():
        number = value.get(name)
        if isinstance(number, int | float) and not isinstance(number, bool) and not 0 <= number <= bound:
            raise ValueError(f"{name} must be from 0 to {bound:,} (got {number!r})")
    try:
        # lax mode: 500.0 is 500; SearchSettings' own checks (__post_init__) run too
        checked = TypeAdapter(SearchSettings).validate_python({**value, "time_limit_s": 1.0})
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"]))
        message = _short(first["msg"].removeprefix("Value error, "))
        raise ValueError(f"{where}: {message}" if where else message) from None
    return {name: getattr(checked, name) for name in value}


def _short(text: Any, limit: int = 120) -> str:
    """One line of at most `limit` characters (messages never quote a whole file)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SolverSettings(_Strict):
    time_limit_s: float = Field(default=30, gt=0, le=MAX_TIME_LIMIT_S)
    seed: int = Field(default=1, ge=0, le=MAX_SEED)
    deterministic: bool = False
    solution_limit: int | None = Field(default=None, ge=1, le=MAX_SOLUTION_LIMIT)
    workers: int = Field(default=2, ge=1, le=MAX_WORKERS)
    options: dict[str, Any] = Field(default_factory=dict)  # engine-specific settings for the solver

    _check_options = field_validator("options")(_solver_options)


def _kabupaten_choice(value: Any) -> Any:
    if value == "all":
        return value
    if (
        isinstance(value, list)
        and 0 < len(value) <= MAX_KABUPATEN
        and all(isinstance(c, str) and _KABUPATEN_CODE.match(c) for c in value)
    ):
        return value
    raise ValueError('must be `all` or a non-empty list of kabupaten codes such as ["64.11"]')


class AssignRule(_Strict):
    """Officers pin work to a fleet: the goods of `desa` go from the warehouse to port `base` and on to each desa
    by a `vehicle_type` vehicle based there (the Lanal Sangatta vessels for Kutai Timur's island desa)."""

    name: str = Field(min_length=1, max_length=MAX_TEXT)
    desa: list[str] = Field(min_length=1, max_length=MAX_ASSIGNED_DESA)  # desa codes, e.g. 64.08.05.2018
    base: str = Field(min_length=1, max_length=100)  # a port node id, e.g. port:lanal_sangatta
    vehicle_type: str = Field(min_length=1, max_length=100)  # a vehicle type of the fleet file


class Scenario(_Strict):
    name: str
    description: str = Field(default="", max_length=MAX_TEXT)
    network: Path
    demand: DemandSpec = AllocationDemand(source="allocation")
    catalog: Path
    fleet: Path
    calendar: Calendar
    kabupaten: Literal["all"] | list[str] = "all"
    blocked_legs: list[str] = Field(default_factory=list, max_length=MAX_BLOCKED_LEGS)
    solver: SolverSettings = SolverSettings()
    assign: list[AssignRule] = Field(default_factory=list, max_length=MAX_ASSIGN_RULES)
    _folder: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

    _check_kabupaten = field_validator("kabupaten", mode="before")(_kabupaten_choice)

    @field_validator("name")
    @classmethod
    def _usable_as_folder_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
            raise ValueError(
                "use letters, digits, '.', '_' and '-' only (no spaces; it names output folders)"
            )
        return value

    @property
    def source(self) -> Path | None:
        """The scenario file this was loaded from."""
        return self._source

    @property
    def folder(self) -> Path:
        """The folder its relative paths start from."""
        return self._folder

    def resolve(self, path: Path) -> Path:
        """A path of the scenario file, relative to the file's folder."""
        return _resolve(self._folder, path)

    def assignments(self) -> dict[str, Assignment]:
        """PPS node -> the assign rule that pins it (the first, when a desa is named twice: the check says so)."""
        pinned: dict[str, Assignment] = {}
        for rule in self.assign:
            for code in rule.desa:
                pinned.setdefault(pps_node_id(code), Assignment(rule.base, rule.vehicle_type, rule.name))
        return pinned

    def resolved_paths(self) -> ScenarioPaths:
        return _paths(self._folder, self.network, self.catalog, self.fleet, self.demand)

    def kabupaten_codes(self, network: Network) -> list[str]:
        """The kabupaten this scenario plans: every kabupaten warehouse of the network for `all`."""
        if self.kabupaten != "all":
            return sorted(set(self.kabupaten))
        return _network_kabupaten(network)


def _resolve(folder: Path, path: Path) -> Path:
    return path if path.is_absolute() else folder / path


def _paths(
    folder: Path,
    network: Path,
    catalog: Path | None,
    fleet: Path | None,
    demand: AllocationDemand | CsvDemand,
) -> ScenarioPaths:
    network = _resolve(folder, network)
    desa_tps = None
    if isinstance(demand, CsvDemand):
        figures, kecamatan, voters = None, None, _resolve(folder, demand.path)
    else:
        default = network_dir(network) / DEFAULT_FIGURES
        figures = _resolve(folder, demand.figures) if demand.figures else default
        kecamatan = _resolve(folder, demand.kecamatan_dpt) if demand.kecamatan_dpt else None
        voters = None
        if demand.weight == WEIGHT_PEMILU2024_TPS:
            desa_tps = (
                _resolve(folder, demand.desa_tps)
                if demand.desa_tps
                else network_dir(network) / DEFAULT_DESA_TPS
            )
    return ScenarioPaths(
        network=network,
        catalog=_resolve(folder, catalog) if catalog else None,
        fleet=_resolve(folder, fleet) if fleet else None,
        figures=figures,
        kecamatan_dpt=kecamatan,
        voters_csv=voters,
        desa_tps=desa_tps,
    )


@dataclass(frozen=True)
class ScenarioPaths:
    network: Path
    catalog: Path | None
    fleet: Path | None
    figures: Path | None  # allocation: published TPS/DPT per kabupaten
    kecamatan_dpt: Path | None  # allocation: published DPT per kecamatan
    voters_csv: Path | None  # csv: the officer's desa file
    desa_tps: Path | None = None  # allocation by pemilu2024_tps: TPS per desa at the Pemilu 2024


@dataclass(frozen=True)
class Loaders:
    """How load_scenario reads the network and the desa table (tests pass cached versions)."""

    network: Callable[[Path], Network] = load_network
    desa: Callable[[Path], pd.DataFrame] = desa_of_network


@dataclass(frozen=True)
class ScenarioInputs:
    """Everything a solve reads, restricted to the scenario's kabupaten."""

    scenario: Scenario
    network: Network  # blocked legs closed
    kabupaten: list[str]
    items: tuple[Item, ...]
    fleet: Fleet
    demand: Demand = field(repr=False)


# ---------------------------------------------------------------- loading and checking


def display_path(path: Path) -> str:
    """A path as an officer would type it: relative to the working folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _network_kabupaten(network: Network) -> list[str]:
    codes = network.nodes.loc[network.nodes["kind"] == "warehouse", "kabupaten_code"]
    return sorted(c for c in codes.astype(str) if _KABUPATEN_CODE.match(c))


def _parsed(adapter: TypeAdapter, value: Any) -> Any:
    """`value` validated, or None; its errors are already reported by the whole-scenario validation."""
    try:
        return adapter.validate_python(value)
    except (ValidationError, ValueError):
        return None


def _file_problem(path: Path, field_name: str, source: str) -> str | None:
    try:
        if path.is_file():
            return None
        return f"{source}: {field_name}: file not found: {display_path(path)}"
    except (OSError, ValueError) as err:
        return f"{source}: {field_name}: cannot open {str(path)[:200]!r} ({type(err).__name__})"


def _sub_problems(err: InputError) -> list[str]:
    return err.problems or [str(err)]


def _calendar_problems(raw: Any, source: str) -> list[str]:
    """Deadlines after the start, PPS after PPK; checked on whichever calendar fields parse."""
    if not isinstance(raw, dict):
        return []
    zone_name = _parsed(TypeAdapter(str), raw.get("timezone", "Asia/Makassar"))
    try:
        zone = ZoneInfo(zone_name or "")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        zone = ZoneInfo("Asia/Makassar")  # the bad zone itself is reported by the validation

    def moment(name: str) -> datetime | None:
        value = _parsed(TypeAdapter(datetime), raw.get(name))
        if value is None or not 1970 <= value.year <= 2200:
            return None  # reported by the validation
        return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)

    start, ppk, pps = moment("start"), moment("ppk_deadline"), moment("pps_deadline")
    problems = []
    for name, deadline in (("ppk_deadline", ppk), ("pps_deadline", pps)):
        if start is not None and deadline is not None and deadline <= start:
            problems.append(
                f"{source}: calendar.{name}: {deadline:%Y-%m-%d %H:%M} is not after the start {start:%Y-%m-%d %H:%M}"
            )
    if start is not None and pps is not None and pps - start > MAX_HORIZON:
        problems.append(
            f"{source}: calendar.pps_deadline: {pps:%Y-%m-%d} is more than {MAX_HORIZON.days} days after "
            f"the start {start:%Y-%m-%d}"
        )
    if ppk is not None and pps is not None and pps < ppk:
        problems.append(
            f"{source}: calendar.pps_deadline: {pps:%Y-%m-%d %H:%M} is before the PPK deadline {ppk:%Y-%m-%d %H:%M}"
        )
    return problems


def _network_problems(legs: list[str], kabupaten: Any, network: Network, source: str) -> list[str]:
    problems = [
        f"{source}: blocked_legs[{i}]: unknown leg id {leg!r}"
        for i, leg in enumerate(legs)
        if leg not in network.legs.index
    ]
    known = _network_kabupaten(network)
    for i, code in enumerate([] if kabupaten == "all" else kabupaten):
        if code not in known:
            problems.append(
                f"{source}: kabupaten[{i}]: unknown kabupaten {code!r} (known: {', '.join(known)})"
            )
    return problems


def pps_node_id(code: str) -> str:
    """A desa given as its code (64.08.05.2018) or as its node id (pps:64.08.05.2018), as the node id."""
    return code if code.startswith("pps:") else f"pps:{code}"


def _assign_problems(rules: Any, network: Network, source: str) -> list[str]:
    """Each assign rule names desa of the network, each desa once, and a port of the network. A rule's desa
    outside the scenario's kabupaten are let be (a province scenario narrowed to one kabupaten keeps its rules)."""
    if not isinstance(rules, list):
        return []
    problems, seen = [], {}
    nodes = network.nodes.index
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        base = rule.get("base")
        if isinstance(base, str) and (base not in nodes or not is_hub(base)):
            problems.append(f"{source}: assign[{i}].base: {base[:100]!r} is not a port of the network")
        for j, code in enumerate(rule.get("desa") or []):
            if not isinstance(code, str):
                continue
            node = pps_node_id(code)
            where = f"{source}: assign[{i}].desa[{j}]"
            if node not in nodes or not is_pps(node):
                problems.append(f"{where}: unknown desa {code[:100]!r}")
            elif node in seen:
                problems.append(f"{where}: {code!r} is already pinned by assign[{seen[node]}]")
            seen.setdefault(node, i)
    return problems


def assign_fleet_problems(scenario: Scenario, fleet: Fleet, kabupaten: list[str]) -> list[str]:
    """Each assign rule's vehicle type has a vehicle at its base serving the kabupaten of its desa (of those in
    `kabupaten`, the scenario's)."""
    source = display_path(scenario.source) if scenario.source else "scenario"
    problems = []
    for i, rule in enumerate(scenario.assign):
        pinned = {kabupaten_of(pps_node_id(c)) for c in rule.desa} & set(kabupaten)
        serving = {
            v.kabupaten_code for v in fleet.vehicles if v.base == rule.base and v.type_id == rule.vehicle_type
        }
        for code in sorted(pinned - serving):
            problems.append(
                f"{source}: assign[{i}].vehicle_type: the fleet has no {rule.vehicle_type[:100]!r} at "
                f"{rule.base[:100]} serving kabupaten {code}"
            )
    return problems


def _catalog_problems(path: Path, source: str) -> list[str]:
    missing = _file_problem(path, "catalog", source)
    if missing:
        return [missing]
    try:
        load_catalog(path)
    except InputError as err:
        return _sub_problems(err)
    return []


def _fleet_problems(path: Path, network: Network | None, source: str) -> list[str]:
    missing = _file_problem(path, "fleet", source)
    if missing:
        return [missing]
    return check_fleet(path, network.nodes if network is not None else None, display_path(path))[1]


def _demand_problems(
    demand: AllocationDemand | CsvDemand,
    paths: ScenarioPaths,
    kabupaten: Any,
    network_ok: bool,
    loaders: Loaders,
    source: str,
) -> list[str]:
    """Load the demand source as a solve would and report what is wrong with it."""
    if isinstance(demand, CsvDemand):
        files = [("demand.path", paths.voters_csv)]
    else:
        files = [
            ("demand.figures", paths.figures),
            ("demand.kecamatan_dpt", paths.kecamatan_dpt),
            ("demand.desa_tps", paths.desa_tps),
        ]
    missing = [m for name, p in files if p is not None and (m := _file_problem(p, name, source))]
    if missing or not network_ok:
        return missing
    try:
        desa = loaders.desa(paths.network)
        if isinstance(demand, CsvDemand):
            read_voters_csv(paths.voters_csv, desa, None if kabupaten == "all" else kabupaten)
        else:
            _allocate(demand, paths, desa)
    except InputError as err:
        label = f"{display_path(Path(err.source))}: " if err.source else f"{source}: demand: "
        return [p if err.source and p.startswith(str(err.source)) else label + p for p in _sub_problems(err)]
    return []


def load_scenario(path: str | Path, loaders: Loaders = Loaders()) -> Scenario:
    """Read a scenario file and check it against its network, catalog, fleet and demand files.

    Raises one InputError listing every problem found ('<file>: <field path>: <what is wrong>').
    """
    path = Path(path)
    source = display_path(path)
    raw = read_yaml(path, "scenario")
    if not isinstance(raw, dict):
        raise InputError(
            "a scenario file must be a YAML mapping",
            source=source,
            problems=[f"{source}: expected a mapping of fields"],
        )
    if not {"network", "fleet", "catalog", "calendar"} & set(raw):  # another file: do not quote it
        raise InputError(
            "not a scenario file",
            source=source,
            problems=[f"{source}: not a scenario file (it has none of network, fleet, catalog, calendar)"],
        )
    problems: list[str] = []
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        # the demand union adds its tag to the field path: demand.csv.path -> demand.path
        problems += [
            re.sub(r": demand\.(csv|allocation)\.", ": demand.", p) for p in pydantic_problems(err, source)
        ]
    # Check every part that parsed on its own too, so that one run reports every problem.
    folder = path.parent
    part = {
        "network": _parsed(TypeAdapter(Path), raw.get("network")),
        "catalog": _parsed(TypeAdapter(Path), raw.get("catalog")),
        "fleet": _parsed(TypeAdapter(Path), raw.get("fleet")),
        "demand": _parsed(TypeAdapter(DemandSpec), raw.get("demand", {"source": "allocation"})),
        "legs": _parsed(TypeAdapter(list[str]), raw.get("blocked_legs", [])) or [],
        "kabupaten": _safe_kabupaten(raw.get("kabupaten", "all")),
    }
    problems += _calendar_problems(raw.get("calendar"), source)
    network = None
    if part["network"] is not None:
        network_path = _resolve(folder, part["network"])
        try:
            network = loaders.network(network_path)
        except InputError as err:
            problems.append(
                f"{source}: network: {display_path(network_path)}: {err.args[0] if err.args else err}"
            )
        except (OSError, ValueError) as err:
            problems.append(
                f"{source}: network: cannot open {str(network_path)[:200]!r} ({type(err).__name__})"
            )
        if network is not None:
            problems += _network_problems(part["legs"], part["kabupaten"] or "all", network, source)
            problems += _assign_problems(raw.get("assign"), network, source)
    if part["catalog"] is not None:
        problems += _catalog_problems(_resolve(folder, part["catalog"]), source)
    if part["fleet"] is not None:
        problems += _fleet_problems(_resolve(folder, part["fleet"]), network, source)
    if part["demand"] is not None and part["network"] is not None:
        paths = _paths(folder, part["network"], None, None, part["demand"])
        kabupaten = part["kabupaten"] or "all"
        problems += _demand_problems(part["demand"], paths, kabupaten, network is not None, loaders, source)

    if problems or scenario is None:
        count = len(problems)
        raise InputError(
            f"scenario has {count} problem{'s' if count != 1 else ''}", source=source, problems=problems
        )
    scenario._folder = folder
    scenario._source = path
    return scenario


def _safe_kabupaten(value: Any) -> Any:
    try:
        return _kabupaten_choice(value)
    except ValueError:
        return None


# ---------------------------------------------------------------- what a solve reads


def _allocate(spec: AllocationDemand, paths: ScenarioPaths, desa: pd.DataFrame) -> pd.DataFrame:
    """TPS and DPT per desa by the scenario's allocation method (demand.weight)."""
    figures = read_kabupaten_figures(paths.figures, spec.province_dpt)
    kecamatan = read_kecamatan_dpt(paths.kecamatan_dpt) if paths.kecamatan_dpt else None
    weights = AllocationWeights(spec.kelurahan_factor, spec.area_exponent)
    prior = read_desa_tps(paths.desa_tps, desa) if spec.weight != WEIGHT_AREA and paths.desa_tps else None
    return allocate_voters(desa, figures, kecamatan, weights, prior)


def load_demand(
    scenario: Scenario, network: Network, items: tuple[Item, ...], loaders: Loaders = Loaders()
) -> Demand:
    """Items per PPS and PPK of the scenario's kabupaten."""
    paths = scenario.resolved_paths()
    desa = loaders.desa(paths.network)
    kabupaten = scenario.kabupaten_codes(network)
    spec = scenario.demand
    if isinstance(spec, CsvDemand):
        voters = read_voters_csv(paths.voters_csv, desa, kabupaten)
    else:
        voters = _allocate(spec, paths, desa)
    voters = voters[voters["kabupaten_code"].isin(kabupaten)].reset_index(drop=True)
    return build_demand(voters, items, spec.elections)


def load_inputs(scenario: Scenario, loaders: Loaders = Loaders()) -> ScenarioInputs:
    """Network (blocked legs closed), catalog, fleet and demand of a checked scenario."""
    paths = scenario.resolved_paths()
    network = loaders.network(paths.network)
    if scenario.blocked_legs:
        network = network.blocked(scenario.blocked_legs)
    kabupaten = scenario.kabupaten_codes(network)
    items = load_catalog(paths.catalog)
    fleet = expand_fleet(load_fleet_spec(paths.fleet), network, kabupaten)
    if problems := assign_fleet_problems(scenario, fleet, kabupaten):
        raise InputError(
            "an assign rule names a vehicle the fleet does not have",
            source=scenario.source,
            problems=problems,
        )
    demand = load_demand(scenario, network, items, loaders)
    return ScenarioInputs(scenario, network, kabupaten, items, fleet, demand)


def scenario_summary(inputs: ScenarioInputs) -> dict[str, Any]:
    """Counts an officer checks before a solve."""
    scenario = inputs.scenario
    return {
        "name": scenario.name,
        "kabupaten": len(inputs.kabupaten),
        "ppk": len(inputs.demand.ppk),
        "pps": len(inputs.demand.pps),
        "tps": int(inputs.demand.pps["tps"].sum()),
        "dpt": int(inputs.demand.pps["dpt"].sum()),
        "vehicles": len(inputs.fleet.vehicles),
        "blocked_legs": len(scenario.blocked_legs),
        "start": scenario.calendar.start_local.isoformat(),
        "pps_deadline": scenario.calendar.pps_deadline_local.isoformat(),
    }
