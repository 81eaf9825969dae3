"""Vehicle types and vehicles: what a type can do and when it may do it (modes, speeds, capacity, handling
times, daylight).

The fleet file is read into these (planner.fleet); dispatch plans with them and validate re-checks plans with
them. Times are minutes after the plan start; `start_minute_of_day` is the local clock time of the plan start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from planner.paths import TravelSpeeds


@dataclass(frozen=True)
class VehicleType:
    """One vehicle type of the fleet (truck, pickup, longboat, speedboat, navy vessel, ...)."""

    type_id: str
    name: str
    tiers: frozenset[int]
    speeds: TravelSpeeds
    capacity_kg: float
    capacity_m3: float
    operating_hours: (
        tuple[int, int] | None
    )  # (open, close) in minutes after local midnight; None: day and night
    load_min: int
    unload_min: int
    cost_per_km: float
    cost_per_day: float
    unload_min_per_kit: float = 0.0  # minutes per TPS kit handed over, on top of unload_min (the BAST)

    @property
    def modes(self) -> frozenset[str]:
        return self.speeds.modes


@dataclass(frozen=True)
class VehicleSpec:
    """One physical vehicle: its id, where it is based, and its type."""

    vehicle_id: str
    base: str
    kind: VehicleType  # its vehicle type

    @property
    def type_id(self) -> str:
        return self.kind.type_id


def handling_minutes(kind: VehicleType, kits: int) -> int:
    """Minutes to hand over goods at a stop: the fixed `unload_min` (BAST record) plus a time per TPS kit."""
    return kind.unload_min + math.ceil(kind.unload_min_per_kit * max(kits, 0) - 1e-9)


def kits_handed_over(
    deliver: Mapping[str, int], marker: tuple[str, int] | None, tps_kits: Sequence[int] = ()
) -> int:
    """TPS kits in a delivery: the listed kit numbers at a PPS, else counted by the marker item.

    `marker` is (item id, units per kit) of an item every kit holds the same number of (the ballot
    boxes); None when the catalog has no TPS kit.
    """
    if tps_kits:
        return len(tps_kits)
    if marker is None:
        return 0
    item, per = marker
    return deliver.get(item, 0) // per if per > 0 else 0


def is_open(minute: int, hours: tuple[int, int] | None, start_minute_of_day: int) -> bool:
    """True if a vehicle with these operating hours may be moving or handling cargo at `minute` (ends included)."""
    if hours is None:
        return True
    clock = (minute + start_minute_of_day) % 1440
    return hours[0] <= clock <= hours[1]


def working_minutes(start: int, end: int, hours: tuple[int, int] | None, start_minute_of_day: int) -> int:
    """Minutes between `start` and `end` that fall inside the operating hours."""
    if end <= start:
        return 0
    if hours is None:
        return end - start
    total = 0
    day = (start + start_minute_of_day) // 1440
    while True:
        open_at = day * 1440 + hours[0] - start_minute_of_day
        close_at = day * 1440 + hours[1] - start_minute_of_day
        if open_at >= end:
            return total
        total += max(0, min(end, close_at) - max(start, open_at))
        day += 1


def add_working_minutes(
    start: int, minutes: int, hours: tuple[int, int] | None, start_minute_of_day: int
) -> int:
    """The minute at which `minutes` of work that begins at `start` is done, pausing outside operating hours."""
    if hours is None or minutes <= 0:
        return start + max(minutes, 0)
    t, left = start, minutes
    while True:
        day = (t + start_minute_of_day) // 1440
        open_at = day * 1440 + hours[0] - start_minute_of_day
        close_at = day * 1440 + hours[1] - start_minute_of_day
        if t < open_at:
            t = open_at
        if t >= close_at:
            t = open_at + 1440
            continue
        step = min(left, close_at - t)
        t += step
        left -= step
        if left == 0:
            return t


def nights(
    hours: tuple[int, int] | None, start_minute_of_day: int, horizon: int
) -> tuple[tuple[int, int], ...]:
    """The rest intervals (outside operating hours) that overlap [0, horizon], in minutes after the plan start."""
    if hours is None:
        return ()
    out = []
    day = -1
    while True:
        rest_start = day * 1440 + hours[1] - start_minute_of_day
        rest_end = (day + 1) * 1440 + hours[0] - start_minute_of_day
        if rest_start > horizon:
            return tuple(out)
        if rest_end > 0:
            out.append((max(rest_start, 0), rest_end))
        day += 1


def latest_start(end: int, minutes: int, hours: tuple[int, int] | None, start_minute_of_day: int) -> int:
    """The latest minute at which `minutes` of work can begin and still be done by `end`."""
    if hours is None or minutes <= 0:
        return end - max(minutes, 0)
    t, left = end, minutes
    while True:
        day = (t - 1 + start_minute_of_day) // 1440
        open_at = day * 1440 + hours[0] - start_minute_of_day
        close_at = day * 1440 + hours[1] - start_minute_of_day
        if t > close_at:
            t = close_at
        if t <= open_at:
            t = close_at - 1440
            continue
        step = min(left, t - open_at)
        t -= step
        left -= step
        if left == 0:
            return t
