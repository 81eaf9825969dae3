"""Shortest paths on the network for one vehicle class: travel hours, km and the legs of each path.

A vehicle class moves only on legs of its modes (access legs are open to every class). All-pairs over the
~1,800 Kaltim nodes takes well under a second per class with scipy.sparse.csgraph (see bench/network_paths.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from planner.network import Network

_TIE_BREAK_HOURS = 1e-9  # makes every leg cost > 0 so a path's predecessor is always nearer than the node


@dataclass(frozen=True)
class TravelSpeeds:
    """Speeds in km/h of one vehicle class. A mode missing from `speed_kmh` is not allowed.

    Keys: road, river (or river_up/river_down), sea, access. `rapids_kmh` applies to river legs in the riam.
    """

    speed_kmh: Mapping[str, float]
    rapids_kmh: float | None = None
    road_class_kmh: Mapping[str, float] = field(default_factory=dict)  # e.g. {trunk: 50, local: 30}
    longest_leg_min: float | None = (
        None  # a longer leg cannot be driven by the class's rules (vehicles.stretch_limit)
    )

    @property
    def modes(self) -> frozenset[str]:
        keys = {"river" if k.startswith("river") else k for k in self.speed_kmh}
        return frozenset(keys | {"access"})

    def leg_speed(self, mode: str, direction: str, rapids: bool) -> float:
        if mode == "river":
            if rapids and self.rapids_kmh:
                return self.rapids_kmh
            specific = self.speed_kmh.get(f"river_{direction}") if direction else None
            return (
                specific
                or self.speed_kmh.get("river")
                or max(self.speed_kmh.get("river_up", 0), self.speed_kmh.get("river_down", 0))
            )
        if mode == "access":
            return self.speed_kmh.get("access", 15.0)
        return self.speed_kmh.get(mode, 0.0)

    def speed_on(self, leg: Mapping) -> float:
        """km/h on one leg (a row of Network.legs): by mode and direction, by road class on a road leg (a
        class without its own speed runs at the `road` speed), and on a ferry leg the speed that makes its
        length take its `crossing_h` (wait plus crossing), whatever the vehicle."""
        mode = leg["mode"]
        speed = self.leg_speed(mode, leg["direction"], bool(leg["rapids"]))
        if mode != "road" or speed <= 0:
            return speed
        road_class = leg.get("road_class", "") or ""
        crossing_h = float(leg.get("crossing_h", 0.0) or 0.0)
        if road_class == "ferry" and crossing_h > 0:
            return float(leg["length_km"]) / crossing_h
        return self.road_class_kmh.get(road_class, speed)


ALL_MODES_SPEEDS = TravelSpeeds({"road": 30.0, "river": 15.0, "sea": 20.0, "access": 15.0})


def leg_travel_hours(leg: Mapping, speeds: TravelSpeeds) -> float | None:
    """Hours a vehicle class with `speeds` needs on one leg (a row of Network.legs); None where it has no
    speed there. The one travel-time rule: the dispatcher's matrices, the validator, the re-planner, the KPIs
    and contingency analysis all use it. None too on a leg longer than the class may drive without a stop
    (`longest_leg_min`, its operating day: it would have to stop for the night between two nodes)."""
    speed = speeds.speed_on(leg)
    if speed <= 0:
        return None
    hours = float(leg["length_km"]) / speed
    too_long = speeds.longest_leg_min is not None and hours * 60 > speeds.longest_leg_min + 1e-9
    return None if too_long else hours


def leg_minutes(leg: Mapping, speeds: TravelSpeeds) -> float:
    """leg_travel_hours in minutes; 0 where the class has no speed on the leg (a leg of a mode the vehicle
    does not have: the validator reports it apart)."""
    hours = leg_travel_hours(leg, speeds)
    return hours * 60 if hours is not None else 0.0


def leg_hours(network: Network, speeds: TravelSpeeds) -> np.ndarray:
    """Hours to travel each leg of `network.legs` for this class; inf where the leg is closed to it."""
    legs = network.legs
    hours = np.full(len(legs), np.inf)
    allowed = legs["mode"].isin(speeds.modes).to_numpy() & (legs["status"] == "open").to_numpy()
    columns = ["mode", "direction", "rapids", "length_km"]
    columns += [c for c in ("road_class", "crossing_h") if c in legs.columns]
    rows = legs[columns].to_dict("records")
    for i in np.flatnonzero(allowed):
        travel = leg_travel_hours(rows[i], speeds)
        if travel is not None:
            hours[i] = travel
    return hours


@dataclass(frozen=True)
class PathMatrix:
    """Shortest (fastest) paths from `sources` to every node, for one vehicle class."""

    node_ids: tuple[str, ...]
    sources: tuple[str, ...]
    hours: np.ndarray  # [len(sources), len(node_ids)], inf if unreachable
    km: np.ndarray
    predecessors: np.ndarray
    edge_leg: Mapping[tuple[int, int], str]
    node_index: Mapping[str, int] = field(repr=False)
    source_index: Mapping[str, int] = field(repr=False)
    leg_min: Mapping[str, float] = field(default_factory=dict, repr=False)  # leg id -> minutes (leg_minutes)

    def hours_between(self, a: str, b: str) -> float:
        return float(self.hours[self.source_index[a], self.node_index[b]])

    def there_and_back(self, a: str, b: str) -> bool:
        """True if open legs lead from a to b and back again (a river leg may be blocked one way only)."""
        return bool(np.isfinite(self.hours_between(a, b) + self.hours_between(b, a)))

    def km_between(self, a: str, b: str) -> float:
        return float(self.km[self.source_index[a], self.node_index[b]])

    def path_legs(self, a: str, b: str) -> list[str]:
        """Leg ids from a to b in travel order; [] if a == b; ValueError if b is unreachable."""
        row, target = self.source_index[a], self.node_index[b]
        start = self.node_index[a]
        if not np.isfinite(self.hours[row, target]):
            raise ValueError(f"{b} is not reachable from {a}")
        legs = []
        while target != start:
            previous = int(self.predecessors[row, target])
            legs.append(self.edge_leg[(previous, target)])
            target = previous
        return legs[::-1]

    def path_minutes(self, a: str, b: str) -> list[float]:
        """The travel minutes of each leg of `path_legs(a, b)`, in order (planner.paths.leg_minutes)."""
        return [self.leg_min[leg] for leg in self.path_legs(a, b)]


def shortest_paths(
    network: Network, speeds: TravelSpeeds, sources: Sequence[str] | None = None
) -> PathMatrix:
    """Fastest paths for a vehicle class with `speeds` from `sources` (default: every node) to every node,
    over the open legs of its modes; KeyError for an unknown source."""
    node_ids = tuple(network.nodes.index)
    index = {n: i for i, n in enumerate(node_ids)}
    sources = tuple(sources) if sources is not None else node_ids
    unknown = [s for s in sources if s not in index]
    if unknown:
        raise KeyError(f"unknown node(s): {unknown[:5]}")
    legs = network.legs
    hours = leg_hours(network, speeds)
    frm = legs["from_node"].map(index).to_numpy()
    to = legs["to_node"].map(index).to_numpy()
    two_way = (legs["mode"] != "river").to_numpy()
    rows = np.concatenate([frm, to[two_way]])
    cols = np.concatenate([to, frm[two_way]])
    cost = np.concatenate([hours, hours[two_way]]) + _TIE_BREAK_HOURS
    km = np.concatenate([legs["length_km"].to_numpy(), legs["length_km"].to_numpy()[two_way]])
    ids = np.concatenate([legs.index.to_numpy(), legs.index.to_numpy()[two_way]])
    usable = np.isfinite(cost)
    # keep the fastest leg between each ordered pair of nodes
    order = np.lexsort((ids[usable], cost[usable], cols[usable], rows[usable]))
    r, c, w, k, leg = (a[usable][order] for a in (rows, cols, cost, km, ids))
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    r, c, w, k, leg = r[first], c[first], w[first], k[first], leg[first]
    n = len(node_ids)
    graph = csr_matrix((w, (r, c)), shape=(n, n))
    src = np.array([index[s] for s in sources], dtype=int)
    dist, pred = dijkstra(graph, directed=True, indices=src, return_predecessors=True)
    km_matrix = _accumulate(dist, pred, csr_matrix((k, (r, c)), shape=(n, n)), src)
    edge_leg = {(int(a), int(b)): str(x) for a, b, x in zip(r, c, leg, strict=True)}
    with np.errstate(invalid="ignore"):
        dist = np.where(np.isfinite(dist), np.maximum(dist - 0, 0), np.inf)
    finite = np.isfinite(hours)
    leg_min = {str(x): float(h) * 60 for x, h in zip(legs.index[finite], hours[finite], strict=True)}
    return PathMatrix(
        node_ids,
        sources,
        dist,
        km_matrix,
        pred,
        edge_leg,
        index,
        {s: i for i, s in enumerate(sources)},
        leg_min,
    )


def _accumulate(dist: np.ndarray, pred: np.ndarray, edge_km: csr_matrix, src: np.ndarray) -> np.ndarray:
    """km along each shortest-time path, filled in order of increasing time so predecessors come first."""
    n_src, n = dist.shape
    km = np.full((n_src, n), np.inf)
    km[np.arange(n_src), src] = 0.0
    order = np.argsort(dist, axis=1, kind="stable")
    rows = np.arange(n_src)
    dense_km = edge_km.toarray()
    for rank in range(n):
        cols = order[:, rank]
        p = pred[rows, cols]
        ok = p >= 0
        km[rows[ok], cols[ok]] = km[rows[ok], p[ok]] + dense_km[p[ok], cols[ok]]
    return km
