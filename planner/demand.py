"""Voters, TPS and the items every PPS (desa) and PPK (kecamatan) must receive.

Two sources of voters (DPT) and TPS per desa:

- allocation: the published figures per kabupaten (TPS exact, DPT published or the remainder of the
  province DPT split by population) are spread over the desa of each kabupaten by a weight per desa:
  the desa's regular TPS at the Pemilu of 14 Feb 2024 (method `pemilu2024_tps`, the default) or the
  older area rule (method `area`); see `allocate_voters` and networks/kaltim/DATA.md for the method;
- csv: an officer's file of real figures per desa (columns desa_code, tps, dpt).

`build_demand` turns voters and TPS into item quantities with the catalog rules. The result is plain
data: a per-PPS and a per-PPK DataFrame keyed by network node id.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from planner.catalog import Item, tps_kit
from planner.errors import InputError
from planner.fileio import write_csv
from planner.network import load_config

MAX_VOTERS_PER_TPS = 600  # PKPU 2024: at most 600 voters per TPS in the Pilkada
WEIGHT_PEMILU2024_TPS = "pemilu2024_tps"  # a desa's weight: its regular TPS at the Pemilu of Feb 2024
WEIGHT_AREA = "area"  # a desa's weight: (kelurahan factor) x area ^ exponent, see AllocationWeights
WEIGHT_METHODS = (WEIGHT_PEMILU2024_TPS, WEIGHT_AREA)
METRIC_CRS = "EPSG:32650"
DESA_COLUMNS = [
    "desa_code",
    "desa_name",
    "kecamatan_code",
    "kecamatan_name",
    "kabupaten_code",
    "kabupaten_name",
    "area_km2",
    "kelurahan",
]


@dataclass(frozen=True)
class AllocationWeights:
    """How a kabupaten's (or kecamatan's) voters are spread over its desa when no desa figure exists.

    A desa's share is proportional to `kelurahan_factor` (urban kelurahan, code 1xxx) or 1 (rural desa,
    code 2xxx), times its area in km2 to the power `area_exponent`: larger desa hold somewhat more people,
    but far from proportionally to their forest and river land.
    """

    kelurahan_factor: float = 3.0
    area_exponent: float = 0.25


# ---------------------------------------------------------------- integer apportionment


def apportion(total: int, weights: Sequence[float], caps: Sequence[int] | None = None) -> list[int]:
    """Split `total` into integers proportional to `weights`, none above its cap, summing exactly to total.

    Shares that would exceed a cap are fixed at the cap and the rest is re-spread over the others
    (water-filling); the integer rounding is by largest remainder, ties to the earlier index.
    """
    count = len(weights)
    caps = list(caps) if caps is not None else [total] * count
    if total < 0 or total > sum(caps):
        raise ValueError(f"cannot split {total} under caps summing to {sum(caps)}")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    shares = [0.0] * count
    free = [i for i in range(count) if caps[i] > 0]
    remaining = float(total)
    while free:
        weight_sum = sum(weights[i] for i in free)
        if weight_sum <= 0:
            weight_sum, use = float(len(free)), dict.fromkeys(free, 1.0)
        else:
            use = {i: weights[i] for i in free}
        over = [i for i in free if remaining * use[i] / weight_sum > caps[i]]
        if not over:
            for i in free:
                shares[i] = remaining * use[i] / weight_sum
            break
        for i in over:
            shares[i] = float(caps[i])
            remaining -= caps[i]
        free = [i for i in free if i not in over]
    result = [min(math.floor(s), caps[i]) for i, s in enumerate(shares)]
    order = sorted(range(count), key=lambda i: (-(shares[i] - result[i]), i))
    left = total - sum(result)
    while left > 0:
        for i in order:
            if left and result[i] < caps[i]:
                result[i] += 1
                left -= 1
    return result


def apportion_seats(targets: Sequence[float], minimums: Sequence[int], total: int) -> list[int]:
    """Give every unit its minimum, then each further seat to the unit with most target per seat.

    This is the highest-averages (D'Hondt) method; it minimises the largest target per seat, which for
    TPS means the fewest voters crowded into one TPS. Ties go to the earlier index.
    """
    seats = [max(1, m) for m in minimums]
    extra = total - sum(seats)
    if extra < 0:
        raise ValueError(f"{total} seats cannot cover the minimums (sum {sum(seats)})")
    heap = [(-targets[i] / seats[i], i) for i in range(len(seats))]
    heapq.heapify(heap)
    for _ in range(extra):
        _, i = heapq.heappop(heap)
        seats[i] += 1
        heapq.heappush(heap, (-targets[i] / seats[i], i))
    return seats


def split_evenly(voters: int, tps: int) -> list[int]:
    """Voters of each TPS of a desa: as even as whole voters allow, larger TPS first (1001 over 2 -> 501, 500)."""
    if tps <= 0:
        return []
    base, extra = divmod(voters, tps)
    return [base + 1] * extra + [base] * (tps - extra)


# ---------------------------------------------------------------- reading the source data

# Bounds of the demand figures. The most populous kabupaten of Indonesia (Bogor) has under 4 million
# voters (assumption: KPU's 2024 DPT of about 3.9 million), so under 10,000 TPS at 600 voters each; the
# largest kelurahan have a few hundred TPS. A larger number is a typo, and 1e16 TPS would exhaust memory.
MAX_KABUPATEN_TPS = 50_000
MAX_KABUPATEN_DPT = 20_000_000
MAX_POPULATION = 50_000_000
MAX_KECAMATAN_DPT = 5_000_000
MAX_DESA_TPS = 2_000
MAX_CSV_BYTES = 50_000_000  # every desa of Indonesia (84,000 rows) fits in a few MB
MAX_SHOWN_PROBLEMS = 50  # an officer fixes the first ones and runs again


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_SHOWN_PROBLEMS:
        return problems
    return [*problems[:MAX_SHOWN_PROBLEMS], f"and {len(problems) - MAX_SHOWN_PROBLEMS:,} more"]


def _read_csv_rows(path: Path, what: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise InputError(f"{what} file not found", source=path)
    if path.stat().st_size > MAX_CSV_BYTES:
        raise InputError(f"the {what} file is larger than {MAX_CSV_BYTES:,} bytes", source=path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
            rows = [
                (line, {(k or "").strip(): (v.strip() if isinstance(v, str) else "") for k, v in row.items()})
                for line, row in enumerate(reader, start=2)
            ]
    except (UnicodeDecodeError, csv.Error) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)[:80]
        raise InputError(f"cannot read the {what} as CSV ({reason})", source=path) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{what} lacks column(s)",
            source=path,
            problems=[f"{path}: missing column {c!r}" for c in missing],
        )
    return rows


def _whole(
    text: str, where: str, field: str, problems: list[str], minimum: int = 0, maximum: int = 10**9
) -> int | None:
    try:
        number = float(text)
        if not math.isfinite(number) or number != int(number):
            raise ValueError
    except ValueError:
        problems.append(f"{where}: {field}: must be a whole number (got {text[:30]!r})")
        return None
    if number < minimum:
        problems.append(f"{where}: {field}: must be at least {minimum} (got {int(number)})")
        return None
    if number > maximum:
        problems.append(f"{where}: {field}: must be at most {maximum:,} (got {text[:30]})")
        return None
    return int(number)


def read_kabupaten_figures(path: str | Path, province_dpt: int | None = None) -> pd.DataFrame:
    """TPS and DPT per kabupaten from kpu_pilkada_2024.csv; DPT left blank is allocated.

    Columns of the file: kabupaten_code, kabupaten_name, tps, dpt (blank if unpublished), population_2025.
    A blank DPT gets the remainder of `province_dpt` after the published kabupaten, split by population
    (largest remainder). Returns kabupaten_code, kabupaten_name, tps, dpt, dpt_source ('published'|'allocated').
    """
    path = Path(path)
    rows = _read_csv_rows(path, "kabupaten figures", ["kabupaten_code", "tps", "dpt", "population_2025"])
    problems: list[str] = []
    records = []
    for line, row in rows:
        where = f"{path}: line {line}"
        code = row.get("kabupaten_code", "")
        tps = _whole(row.get("tps", ""), where, "tps", problems, minimum=1, maximum=MAX_KABUPATEN_TPS)
        dpt = (
            _whole(row["dpt"], where, "dpt", problems, minimum=1, maximum=MAX_KABUPATEN_DPT)
            if row.get("dpt")
            else None
        )
        population = _whole(
            row.get("population_2025", "") or "0", where, "population_2025", problems, maximum=MAX_POPULATION
        )
        records.append(
            {
                "kabupaten_code": code,
                "kabupaten_name": row.get("kabupaten_name", ""),
                "tps": tps,
                "dpt": dpt,
                "population": population,
            }
        )
    codes = [r["kabupaten_code"] for r in records]
    problems += [
        f"{path}: kabupaten {c}: appears more than once"
        for c in sorted({c for c in codes if codes.count(c) > 1})
    ]
    if problems:
        raise InputError("invalid kabupaten figures", source=path, problems=_capped(problems))
    figures = pd.DataFrame(records)
    unpublished = figures["dpt"].isna()
    figures["dpt_source"] = ["allocated" if u else "published" for u in unpublished]
    if unpublished.any():
        published = int(figures.loc[~unpublished, "dpt"].sum())
        if province_dpt is None:
            raise InputError(
                "some kabupaten have no DPT: give the province DPT (demand.province_dpt) to allocate the rest",
                source=path,
                problems=[
                    f"{path}: kabupaten {c}: dpt is blank" for c in figures.loc[unpublished, "kabupaten_code"]
                ],
            )
        remainder = province_dpt - published
        population = figures.loc[unpublished, "population"].astype(float).tolist()
        if remainder < int(unpublished.sum()) or sum(population) <= 0:
            raise InputError(
                f"province DPT {province_dpt:,} leaves {remainder:,} voters for {int(unpublished.sum())} kabupaten "
                "without a published DPT (or they have no population to split by)",
                source=path,
            )
        figures.loc[unpublished, "dpt"] = apportion(remainder, population)
    figures["dpt"] = figures["dpt"].astype(int)
    figures["tps"] = figures["tps"].astype(int)
    return figures.drop(columns="population").sort_values("kabupaten_code").reset_index(drop=True)


def read_kecamatan_dpt(path: str | Path) -> dict[str, int]:
    """Published DPT per kecamatan (columns kecamatan_code, dpt), matched exactly by the allocation."""
    path = Path(path)
    rows = _read_csv_rows(path, "kecamatan DPT", ["kecamatan_code", "dpt"])
    problems: list[str] = []
    figures: dict[str, int] = {}
    for line, row in rows:
        where = f"{path}: line {line}"
        code = row["kecamatan_code"]
        dpt = _whole(row["dpt"], where, "dpt", problems, minimum=1, maximum=MAX_KECAMATAN_DPT)
        if code in figures:
            problems.append(f"{where}: kecamatan_code {code}: appears more than once")
        elif dpt is not None:
            figures[code] = dpt
    if problems:
        raise InputError("invalid kecamatan DPT figures", source=path, problems=_capped(problems))
    return figures


def read_desa_tps(path: str | Path, desa: pd.DataFrame) -> pd.Series:
    """Regular TPS per desa at the Pemilu of 14 Feb 2024 (desa_tps_pemilu2024.csv), indexed by desa code.

    Columns used: desa_code, tps_pemilu2024 (other columns are ignored). Every desa of `desa` needs a row
    with at least 1 TPS; a code that is not a desa of the network, or given twice, is named with its line.
    """
    path = Path(path)
    rows = _read_csv_rows(path, "Pemilu 2024 TPS per desa", ["desa_code", "tps_pemilu2024"])
    known = set(desa["desa_code"])
    problems: list[str] = []
    counts: dict[str, int] = {}
    for line, row in rows:
        code = row["desa_code"]
        where = f"{path}: line {line} (desa {code or '?'})"
        if code not in known:
            problems.append(f"{where}: desa_code: not a desa of this network")
        elif code in counts:
            problems.append(f"{where}: desa_code: given more than once")
        elif (tps := _whole(row["tps_pemilu2024"], where, "tps_pemilu2024", problems, minimum=1)) is not None:
            counts[code] = tps
    absent = sorted(known - set(counts))
    if absent and not problems:
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        problems.append(f"{path}: no row for {len(absent)} desa: {shown}")
    if problems:
        raise InputError("invalid Pemilu 2024 TPS per desa", source=path, problems=problems)
    return pd.Series(counts, name="tps_pemilu2024", dtype=int).sort_index()


def read_desa(desa_path: str | Path, kecamatan_path: str | Path, kabupaten_path: str | Path) -> pd.DataFrame:
    """Every desa with its kecamatan and kabupaten codes and names and its area (km2), sorted by code."""

    def layer(path: str | Path, what: str) -> gpd.GeoDataFrame:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{what} file not found", source=path)
        try:
            frame = gpd.read_file(path, engine="pyogrio")
        except Exception as err:
            raise InputError(f"cannot read {what} ({str(err).splitlines()[0]})", source=path) from None
        missing = [c for c in ("code", "name", "parent") if c not in frame.columns]
        if missing:
            raise InputError(f"{what} lacks field(s) {', '.join(missing)}", source=path)
        return frame

    desa = layer(desa_path, "desa boundaries")
    kecamatan = layer(kecamatan_path, "kecamatan boundaries").set_index("code")["name"]
    kabupaten = layer(kabupaten_path, "kabupaten boundaries").set_index("code")["name"]
    area = shapely.area(shapely.make_valid(desa.to_crs(METRIC_CRS).geometry.values)) / 1e6
    frame = pd.DataFrame(
        {
            "desa_code": desa["code"].astype(str),
            "desa_name": desa["name"].astype(str),
            "kecamatan_code": desa["parent"].astype(str),
            "area_km2": area,
        }
    )
    frame["kabupaten_code"] = frame["kecamatan_code"].str.rsplit(".", n=1).str[0]
    frame["kecamatan_name"] = frame["kecamatan_code"].map(kecamatan).fillna("")
    frame["kabupaten_name"] = frame["kabupaten_code"].map(kabupaten).fillna("")
    # Kemendagri codes: the desa number starts with 1 for an urban kelurahan, 2 for a rural desa
    frame["kelurahan"] = frame["desa_code"].str.rsplit(".", n=1).str[-1].str.startswith("1")
    return frame[DESA_COLUMNS].sort_values("desa_code").reset_index(drop=True)


def desa_of_network(network_path: str | Path) -> pd.DataFrame:
    """`read_desa` on the boundary files named in a network folder's network.yaml."""
    config, folder = load_config(network_path)
    sources = config.sources
    return read_desa(folder / sources.desa, folder / sources.kecamatan, folder / sources.kabupaten)


# ---------------------------------------------------------------- allocation


def desa_weights(desa: pd.DataFrame, weights: AllocationWeights) -> pd.Series:
    """The area rule: (kelurahan_factor if kelurahan else 1) x area_km2 ^ area_exponent, per desa row."""
    factor = desa["kelurahan"].map({True: weights.kelurahan_factor, False: 1.0}).astype(float)
    return factor * desa["area_km2"].clip(lower=0.01) ** weights.area_exponent


def _allocate_unit(dpt: int, tps: int, weights: Sequence[float]) -> tuple[list[int], list[int]]:
    """TPS and DPT per desa of one kabupaten or kecamatan: >= 1 TPS each, <= 600 voters per TPS."""
    targets = [dpt * w / sum(weights) for w in weights]
    tps_per_desa = apportion_seats(targets, [1] * len(weights), tps)
    caps = [MAX_VOTERS_PER_TPS * t for t in tps_per_desa]
    return tps_per_desa, apportion(dpt, weights, caps)


def _feasibility(label: str, dpt: int, tps: int, desa_count: int) -> str | None:
    if tps < desa_count:
        return f"{label}: {tps} TPS cannot give each of its {desa_count} desa a TPS"
    if dpt > MAX_VOTERS_PER_TPS * tps:
        return f"{label}: {dpt:,} voters do not fit in {tps} TPS of at most {MAX_VOTERS_PER_TPS} voters"
    return None


def _kecamatan_figures(
    kab: pd.DataFrame, dpt: int, published: Mapping[str, int], weight: pd.Series, label: str
) -> tuple[dict[str, int], list[str]]:
    """DPT per kecamatan of one kabupaten: published figures, the remainder split by desa weight."""
    kecamatan = sorted(kab["kecamatan_code"].unique())
    known = {k: published[k] for k in kecamatan if k in published}
    unknown = [k for k in kecamatan if k not in known]
    remainder = dpt - sum(known.values())
    if (not unknown and remainder != 0) or remainder < 0:
        return {}, [
            f"{label}: published kecamatan DPT sum to {sum(known.values()):,}, the kabupaten DPT is {dpt:,}"
        ]
    split = apportion(remainder, [float(weight[kab["kecamatan_code"] == k].sum()) for k in unknown])
    return {**known, **dict(zip(unknown, split, strict=True))}, []


def allocate_voters(
    desa: pd.DataFrame,
    figures: pd.DataFrame,
    kecamatan_dpt: Mapping[str, int] | None = None,
    weights: AllocationWeights = AllocationWeights(),
    desa_weight: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """TPS and DPT per desa so that each kabupaten (and each published kecamatan) sums exactly.

    The weight of a desa is `desa_weight[desa_code]` when given (method pemilu2024_tps: its TPS at the
    Pemilu 2024, see `read_desa_tps`), else the area rule of `weights` (method area, `desa_weights`).
    Per kabupaten: DPT targets by desa weight; TPS by highest averages with one TPS per desa at least;
    DPT then by largest remainder under the cap of 600 voters per TPS (voters a crowded desa cannot hold
    go to desa with room). Where kecamatan DPT are published, TPS are first split over the kecamatan the
    same way (at least one per desa and enough for 600 per TPS), then each kecamatan is allocated alone.
    """
    kecamatan_dpt = dict(kecamatan_dpt or {})
    if desa_weight is None:
        weight = desa_weights(desa, weights)
    else:
        weight = desa["desa_code"].map(desa_weight).astype(float)
        if weight.isna().any():
            absent = desa.loc[weight.isna(), "desa_code"].tolist()
            raise InputError(f"no weight for {len(absent)} desa: {', '.join(absent[:10])}")
    problems: list[str] = []
    out = []
    known_kab = set(figures["kabupaten_code"])
    missing = sorted(set(desa["kabupaten_code"]) - known_kab)
    problems += [f"kabupaten {code}: has desa but no TPS/DPT figures" for code in missing]
    problems += [
        f"kecamatan {k}: published DPT for an unknown kecamatan"
        for k in kecamatan_dpt
        if k not in set(desa["kecamatan_code"])
    ]
    for fig in figures.itertuples(index=False):
        kab = desa[desa["kabupaten_code"] == fig.kabupaten_code]
        label = f"kabupaten {fig.kabupaten_code} ({fig.kabupaten_name})"
        if kab.empty:
            problems.append(f"{label}: no desa in the boundary data")
            continue
        issue = _feasibility(label, int(fig.dpt), int(fig.tps), len(kab))
        if issue:
            problems.append(issue)
            continue
        if not any(k in kecamatan_dpt for k in kab["kecamatan_code"]):
            tps, dpt = _allocate_unit(int(fig.dpt), int(fig.tps), weight[kab.index].tolist())
            out.append(pd.DataFrame({"desa_code": kab["desa_code"], "tps": tps, "dpt": dpt}))
            continue
        per_kec, issues = _kecamatan_figures(kab, int(fig.dpt), kecamatan_dpt, weight[kab.index], label)
        problems += issues
        if issues:
            continue
        codes = sorted(per_kec)
        counts = [int((kab["kecamatan_code"] == k).sum()) for k in codes]
        minimums = [
            max(n, math.ceil(per_kec[k] / MAX_VOTERS_PER_TPS)) for k, n in zip(codes, counts, strict=True)
        ]
        if sum(minimums) > int(fig.tps):
            problems.append(f"{label}: {fig.tps} TPS are too few for the published kecamatan DPT")
            continue
        kec_tps = apportion_seats([per_kec[k] for k in codes], minimums, int(fig.tps))
        for code, kec_seats in zip(codes, kec_tps, strict=True):
            members = kab[kab["kecamatan_code"] == code]
            tps, dpt = _allocate_unit(per_kec[code], kec_seats, weight[members.index].tolist())
            out.append(pd.DataFrame({"desa_code": members["desa_code"], "tps": tps, "dpt": dpt}))
    if problems:
        raise InputError("the published figures cannot be allocated to the desa", problems=problems)
    allocated = (
        pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["desa_code", "tps", "dpt"])
    )
    voters = desa.merge(allocated, on="desa_code", how="inner")
    return voters.astype({"tps": int, "dpt": int}).sort_values("desa_code").reset_index(drop=True)


def read_voters_csv(
    path: str | Path, desa: pd.DataFrame, kabupaten: Iterable[str] | None = None
) -> pd.DataFrame:
    """An officer's real TPS and DPT per desa (columns desa_code, tps, dpt; other columns are ignored).

    Every desa of the given kabupaten (all if None) must have a row; rows of other kabupaten are checked
    and then ignored. Each bad row is named with its line number.
    """
    path = Path(path)
    rows = _read_csv_rows(path, "desa voters", ["desa_code", "tps", "dpt"])
    known = set(desa["desa_code"])
    wanted = set(desa["kabupaten_code"]) if kabupaten is None else set(kabupaten)
    problems: list[str] = []
    seen: dict[str, int] = {}
    records = []
    for line, row in rows:
        code = row["desa_code"]
        where = f"{path}: line {line} (desa {code[:30] or '?'})"
        if code not in known:
            problems.append(f"{where}: desa_code: not a desa of this network")
            continue
        if code in seen:
            problems.append(f"{where}: desa_code: already given on line {seen[code]}")
            continue
        seen[code] = line
        tps = _whole(row["tps"], where, "tps", problems, minimum=1, maximum=MAX_DESA_TPS)
        dpt = _whole(row["dpt"], where, "dpt", problems, minimum=0, maximum=MAX_VOTERS_PER_TPS * MAX_DESA_TPS)
        if tps is not None and dpt is not None and dpt > MAX_VOTERS_PER_TPS * tps:
            problems.append(
                f"{where}: dpt: {dpt} voters in {tps} TPS is more than {MAX_VOTERS_PER_TPS} voters per TPS"
            )
        elif tps is not None and dpt is not None:
            records.append({"desa_code": code, "tps": tps, "dpt": dpt})
    needed = desa[desa["kabupaten_code"].isin(wanted)]
    absent = sorted(set(needed["desa_code"]) - set(seen))
    if absent:
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        problems.append(f"{path}: no row for {len(absent)} desa: {shown}")
    if problems:
        raise InputError("invalid desa voters file", source=path, problems=_capped(problems))
    given = pd.DataFrame(records, columns=["desa_code", "tps", "dpt"])
    voters = needed.merge(given, on="desa_code", how="inner")
    return voters.astype({"tps": int, "dpt": int}).sort_values("desa_code").reset_index(drop=True)


# ---------------------------------------------------------------- items per PPS and PPK


@dataclass(frozen=True)
class Demand:
    """Items per PPS and per PPK, keyed by network node id (pps:<desa code>, ppk:<kecamatan code>).

    `pps`: node_id, desa/kecamatan/kabupaten codes and names, tps, dpt, one int column per item id
    (the desa's own items incl. its TPS packages), kg, m3.
    `ppk`: node_id, kecamatan/kabupaten codes and names, pps_count, tps and dpt of the kecamatan,
    one int column per item id (items addressed to the PPK itself), kg, m3 (those items), and
    total_kg, total_m3 (the PPK's own items plus all its PPS: the load to bring to the PPK).
    """

    pps: pd.DataFrame
    ppk: pd.DataFrame
    items: tuple[Item, ...]
    elections: int

    @property
    def item_ids(self) -> list[str]:
        return [item.id for item in self.items]

    @property
    def kabupaten_codes(self) -> list[str]:
        return sorted(self.pps["kabupaten_code"].unique())

    def for_kabupaten(self, codes: Iterable[str]) -> Demand:
        codes = set(codes)
        pps = self.pps[self.pps["kabupaten_code"].isin(codes)].reset_index(drop=True)
        ppk = self.ppk[self.ppk["kabupaten_code"].isin(codes)].reset_index(drop=True)
        return Demand(pps, ppk, self.items, self.elections)

    def kabupaten_totals(self) -> pd.DataFrame:
        """One row per kabupaten: PPK, PPS, TPS, DPT, every item (PPS + PPK), kg and m3."""
        ids = self.item_ids
        pps = self.pps.groupby(["kabupaten_code", "kabupaten_name"], sort=True)
        totals = pps[["tps", "dpt", *ids, "kg", "m3"]].sum()
        totals.insert(0, "pps", pps.size())
        own = self.ppk.groupby(["kabupaten_code", "kabupaten_name"], sort=True)
        totals.insert(0, "ppk", own.size())
        totals[[*ids, "kg", "m3"]] += own[[*ids, "kg", "m3"]].sum()
        totals["kg"] = totals["kg"].round(3)
        totals["m3"] = totals["m3"].round(6)
        return totals.reset_index()


def _weights(quantities: pd.DataFrame, items: Sequence[Item]) -> tuple[pd.Series, pd.Series]:
    kg = sum((quantities[i.id] * i.unit_kg for i in items), start=pd.Series(0.0, index=quantities.index))
    m3 = sum((quantities[i.id] * i.unit_m3 for i in items), start=pd.Series(0.0, index=quantities.index))
    return kg.round(3), m3.round(6)


def build_demand(voters: pd.DataFrame, items: Sequence[Item], elections: int = 2) -> Demand:
    """Item quantities per PPS and PPK from TPS and DPT per desa (one row per desa in `voters`)."""
    items = tuple(items)
    pps = voters[
        [
            "desa_code",
            "desa_name",
            "kecamatan_code",
            "kecamatan_name",
            "kabupaten_code",
            "kabupaten_name",
            "tps",
            "dpt",
        ]
    ].copy()
    pps.insert(0, "node_id", "pps:" + pps["desa_code"])
    splits = [split_evenly(int(d), int(t)) for d, t in zip(pps["dpt"], pps["tps"], strict=True)]
    for item in items:
        pps[item.id] = [item.quantity_at_pps(split, elections) for split in splits]
    pps["kg"], pps["m3"] = _weights(pps, items)
    group = pps.groupby(["kecamatan_code", "kecamatan_name", "kabupaten_code", "kabupaten_name"], sort=True)
    ppk = group[["tps", "dpt"]].sum()
    ppk.insert(0, "pps_count", group.size())
    ppk = ppk.reset_index()
    ppk.insert(0, "node_id", "ppk:" + ppk["kecamatan_code"])
    for item in items:
        ppk[item.id] = item.quantity_at_ppk()
    ppk["kg"], ppk["m3"] = _weights(ppk, items)
    below = group[["kg", "m3"]].sum().reset_index(drop=True)
    ppk["total_kg"] = (ppk["kg"] + below["kg"]).round(3)
    ppk["total_m3"] = (ppk["m3"] + below["m3"]).round(6)
    int_columns = {c: int for c in ["tps", "dpt", *[i.id for i in items]]}
    return Demand(
        pps.astype(int_columns).reset_index(drop=True),
        ppk.astype({**int_columns, "pps_count": int}).reset_index(drop=True),
        items,
        elections,
    )


def pps_kits(demand: Demand) -> dict[str, tuple[dict[str, int], ...]]:
    """The TPS kits of every PPS (node id), TPS 1 first: item id -> units in each kit.

    A desa's voters are split over its TPS as in `build_demand` (larger TPS first), so the kits of a PPS
    add up to its TPS-kit items exactly; what the PPS gets besides (per_pps items) is packed per PPS.
    """
    kit_items = [i for i in demand.items if i.in_tps_kit]
    return {
        node: tuple(tps_kit(kit_items, v, demand.elections) for v in split_evenly(int(dpt), int(tps)))
        for node, dpt, tps in zip(demand.pps["node_id"], demand.pps["dpt"], demand.pps["tps"], strict=True)
    }


def write_demand(demand: Demand, folder: str | Path) -> list[Path]:
    """Write demand-pps.csv, demand-ppk.csv and demand-kabupaten.csv atomically; return their paths."""
    folder = Path(folder)
    frames = {
        "demand-pps.csv": demand.pps,
        "demand-ppk.csv": demand.ppk,
        "demand-kabupaten.csv": demand.kabupaten_totals(),
    }
    return [write_csv(frame, folder / name) for name, frame in frames.items()]
