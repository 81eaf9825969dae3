"""Checks of a built network: node and leg counts, PPS the warehouse cannot reach (or come back from), how
each PPS is reached, and the longest access legs (`planner network check`).

Apart from planner.network so that the network module needs no path search (no import cycle).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from planner.network import NODE_KINDS, Network
from planner.nodes import MODES
from planner.paths import ALL_MODES_SPEEDS, shortest_paths


@dataclass(frozen=True)
class NetworkReport:
    nodes_per_kind: dict[str, int]
    legs_per_mode: dict[str, int]
    km_per_mode: dict[str, float]
    blocked_legs: int
    unreachable: list[tuple[str, str, str, str]]  # (pps node id, name, warehouse, why)


def unreachable_pps(network: Network) -> list[tuple[str, str, str, str]]:
    """PPS that their kabupaten warehouse cannot reach, or cannot come back from, over open legs of any mode."""
    pps = network.nodes_of_kind("pps")
    warehouses = sorted(network.nodes_of_kind("warehouse").index)
    outward = shortest_paths(network, ALL_MODES_SPEEDS, sources=warehouses)
    back = shortest_paths(network, ALL_MODES_SPEEDS, sources=sorted(pps.index))
    out = []
    for node_id, row in pps.iterrows():
        wh = network.warehouse_of(row["kabupaten_code"])
        if wh not in outward.source_index or not math.isfinite(outward.hours_between(wh, node_id)):
            why = "no open leg leads there"
        elif not math.isfinite(back.hours_between(node_id, wh)):
            why = "no open leg leads back"
        else:
            continue
        out.append((str(node_id), str(row["name"]), wh, why))
    return out


def how_reached(network: Network, pps_ids: Iterable[str]) -> dict[str, str]:
    """For each PPS, how the fastest way (any mode) from its kabupaten warehouse gets there, e.g. 'road via
    Jembatan Mahakam (Samarinda)', 'river', 'road + river', 'sea'; 'unreachable' if none."""
    pps_ids = sorted(pps_ids)
    warehouses = sorted({network.warehouse_of(network.nodes.at[p, "kabupaten_code"]) for p in pps_ids})
    warehouses = [w for w in warehouses if w in network.nodes.index]
    if not warehouses:
        return dict.fromkeys(pps_ids, "unreachable")
    paths = shortest_paths(network, ALL_MODES_SPEEDS, sources=warehouses)
    out = {}
    for pps in pps_ids:
        wh = network.warehouse_of(network.nodes.at[pps, "kabupaten_code"])
        if wh not in paths.source_index or not math.isfinite(paths.hours_between(wh, pps)):
            out[pps] = "unreachable"
            continue
        legs = network.legs.loc[paths.path_legs(wh, pps)]
        modes = [m for m in dict.fromkeys(legs["mode"]) if m != "access"]
        crossings = [c for c in dict.fromkeys(legs.get("crossing", pd.Series(dtype=str))) if c]
        how = " + ".join(modes) or "access"
        out[pps] = how + (f" via {', '.join(crossings)}" if crossings else "")
    return out


def longest_access(network: Network, count: int = 10) -> list[tuple[str, float]]:
    """The `count` longest access legs (leg id, km): where a node stands far from the desa site it serves."""
    access = network.legs[network.legs["mode"] == "access"]
    ranked = access.sort_values("length_km", ascending=False, kind="stable").head(count)
    return [(str(i), float(km)) for i, km in ranked["length_km"].items()]


def check_network(network: Network) -> NetworkReport:
    """Counts per node kind and leg mode, km per mode on open legs, blocked legs and unreachable PPS."""
    kinds = network.nodes["kind"].value_counts()
    open_legs = network.legs[network.legs["status"] == "open"]
    by_mode = network.legs.groupby("mode")
    return NetworkReport(
        nodes_per_kind={k: int(kinds.get(k, 0)) for k in NODE_KINDS},
        legs_per_mode={m: int(by_mode.size().get(m, 0)) for m in MODES},
        km_per_mode={m: round(float(open_legs[open_legs["mode"] == m]["length_km"].sum()), 1) for m in MODES},
        blocked_legs=int((network.legs["status"] == "blocked").sum()),
        unreachable=unreachable_pps(network),
    )
