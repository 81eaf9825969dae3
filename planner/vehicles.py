"""Vehicle types and vehicles: what a type can do and when it may do it (modes, speeds, capacity, handling
times, daylight).

The fleet file is read into these (planner.fleet); dispatch plans with them and validate re-checks plans with
them. Times are minutes after the plan start; `start_minute_of_day` is the local clock time of the plan start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
    # driving rules (None: no limit): minutes of driving a day, and a break of break_min at a node before a
    # leg that would take the driving since the last break or night past break_after_driving_min
    max_driving_min_per_day: int | None = None
    break_after_driving_min: int | None = None
    break_min: int = 0

    @property
    def modes(self) -> frozenset[str]:
        return self.speeds.modes


@dataclass(frozen=True)
class Assignment:
    """A scenario `assign:` rule for one desa: its goods leave the warehouse for `base` (a port) and reach the
    desa on a `type_id` vehicle based there, not by way of its PPK. `rule` is the rule's name, for messages."""

    base: str
    type_id: str
    rule: str = ""


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


# ---------------------------------------------------------------- the day of a driver: nights at nodes, limits


# An assumption of this planner, not of the fleet file: the engine cannot see a wait at a node, so it plans
# with a day NODE_WAIT_MARGIN_MIN shorter than the operating hours (`planning_hours`), for the leg that does
# not fit before closing (p90 of a road leg is 53-74 min on the Kaltim network), and with travel stretched by
# `travel_padding` where the day's driving limit binds before closing; the read-back of the trips
# (`schedule_trip`) then keeps the rules exactly.
NODE_WAIT_MARGIN_MIN = 60


def stretch_limit(hours: tuple[int, int] | None) -> float | None:
    """The longest leg a vehicle may drive without stopping: its operating day (None: no limit). A longer leg
    cannot be driven by the rules (it would need a night between two nodes): the vehicle's paths do not use it.
    A leg longer than the day's driving limit or the driving between breaks, but within the day, is driven
    alone from an opening (`drive_legs`): no node on the way allows a rest, so that is the best the rules allow."""
    return float(hours[1] - hours[0]) if hours is not None else None


def planning_hours(kind: VehicleType) -> tuple[int, int] | None:
    """The operating hours the engine plans this type with (its nights are the engine's breaks): closing
    NODE_WAIT_MARGIN_MIN early. None when the type travels day and night."""
    hours = kind.operating_hours
    if hours is None:
        return None
    return hours[0], max(hours[1] - NODE_WAIT_MARGIN_MIN, (hours[0] + hours[1]) // 2)


def travel_padding(kind: VehicleType) -> float:
    """The factor on travel minutes the engine plans this type with: a planning day (`planning_hours`) holds no
    more travel than the day's driving limit and its breaks allow (1 without a limit, or when it does not bind)."""
    hours = planning_hours(kind)
    limit = kind.max_driving_min_per_day
    if hours is None or limit is None:
        return 1.0
    after = kind.break_after_driving_min
    breaks = (limit - 1) // after if after else 0
    return max(1.0, (hours[1] - hours[0]) / (limit + breaks * kind.break_min))


@dataclass(frozen=True)
class Driving:
    """A driver's account at the end of a leg: the local day (days after the plan start's midnight) it counts
    in, minutes driven that day, and minutes driven since the last break or night."""

    day: int = -(10**6)
    today: float = 0.0
    since_break: float = 0.0


@dataclass(frozen=True)
class LegTime:
    """When one leg is driven; `rest` is why the vehicle waited at the node before it: "night" (the leg does not
    fit before closing), "limit" (the day's driving limit), "break" (driving since the last break), or ""."""

    start: float
    end: float
    rest: str = ""


def local_day(minute: float, start_minute_of_day: int) -> int:
    """Days after the plan start's local midnight."""
    return int((minute + start_minute_of_day) // 1440)


def drive_legs(
    kind: VehicleType,
    depart: float,
    minutes: Sequence[float],
    start_minute_of_day: int,
    driving: Driving | None = None,
) -> tuple[list[LegTime], Driving]:
    """Lay out legs of `minutes` driving from `depart`, as early as the rules allow: THE schedule of a trip,
    used by dispatch, the re-planner and the validator alike.

    A vehicle with goods never stops for the night between two nodes: a leg that does not fit before closing,
    or in the day's driving limit, waits at its first node for the next opening; a leg that would take the
    driving since the last break past `break_after_driving_min` first waits `break_min` at the node. A leg
    longer than the day's limit or the driving between breaks starts fresh at an opening and is driven through
    (longer than the operating day, `stretch_limit`, the planner's paths avoid it). `driving` is the account
    before the first leg (default: nothing driven yet)."""
    hours = kind.operating_hours
    state = driving or Driving()
    t = float(depart)
    out: list[LegTime] = []
    for d in minutes:
        if hours is None:
            out.append(LegTime(t, t + d))
            t += d
            continue
        rest = ""
        t, state = _opened(t, state, hours, start_minute_of_day)
        after = kind.break_after_driving_min
        if after is not None and state.since_break > 0 and state.since_break + d > after + 1e-9:
            t, rest = t + kind.break_min, "break"
            state = replace(state, since_break=0.0)
            t, state = _opened(t, state, hours, start_minute_of_day)
        open_at = state.day * 1440 + hours[0] - start_minute_of_day
        close_at = open_at + hours[1] - hours[0]
        limit = kind.max_driving_min_per_day
        late = t + d > close_at + 1e-9
        if (late or (limit is not None and state.today + d > limit + 1e-9)) and (
            t > open_at or state.today > 0
        ):  # a new day helps: wait at this node for the next opening
            rest = "night" if late else "limit"
            t, state = _opened(close_at, state, hours, start_minute_of_day)
        out.append(LegTime(t, t + d, rest))
        t += d
        state = Driving(state.day, state.today + d, state.since_break + d)
    return out, state


def _opened(
    t: float, state: Driving, hours: tuple[int, int], start_minute_of_day: int
) -> tuple[float, Driving]:
    """The first minute from `t` at which the vehicle may set out (the next opening if closed), and its account
    then: a new day starts with nothing driven."""
    day = local_day(t, start_minute_of_day)
    open_at = day * 1440 + hours[0] - start_minute_of_day
    close_at = day * 1440 + hours[1] - start_minute_of_day
    if t >= close_at:
        day += 1
        t = open_at + 1440
    elif t < open_at:
        t = open_at
    if day != state.day:
        state = Driving(day)
    return t, state


def after_stop(kind: VehicleType, driving: Driving, arrived: float, departs: float, handling: int) -> Driving:
    """The account on leaving a node reached at `arrived`: a stay longer than its `handling` (work, not rest) by
    at least a break counts as the break. A new day is started by `drive_legs`."""
    if kind.break_min > 0 and departs - arrived - handling >= kind.break_min:
        return replace(driving, since_break=0.0)
    return driving


def arrival_minute(depart: int, legs: Sequence[LegTime]) -> int:
    """The whole minute a vehicle reaches the end of `legs` (its departure when there are none)."""
    return math.ceil(legs[-1].end - 1e-9) if legs else depart


def schedule_trip(
    kind: VehicleType,
    start: int,
    paths: Sequence[Sequence[float]],
    handling: Sequence[int],
    start_minute_of_day: int,
    driving: Driving | None = None,
) -> tuple[list[tuple[int, int]], Driving]:
    """(arrival, departure) at each stop of a trip that starts at `start`, laid out leg by leg by `drive_legs`:
    `handling[i]` minutes of work at stop i (stop 0: the loading at the base), `paths[i]` the minutes of each
    leg from stop i to stop i + 1. Work at a stop pauses outside the operating hours (at a node, where goods
    may stay the night). Returns the times and the driver's account at the last stop."""
    hours = kind.operating_hours
    times = [(start, add_working_minutes(start, handling[0], hours, start_minute_of_day))]
    for minutes, work in zip(paths, handling[1:], strict=True):
        legs, driving = drive_legs(kind, times[-1][1], minutes, start_minute_of_day, driving)
        arrival = arrival_minute(times[-1][1], legs)
        times.append((arrival, add_working_minutes(arrival, work, hours, start_minute_of_day)))
    return times, driving or Driving()


def latest_setting_out(
    kind: VehicleType, end: int, minutes: Sequence[float], handling: tuple[int, int], start_minute_of_day: int
) -> int:
    """The latest minute a vehicle may begin a trip of one leg path (`handling`: the loading before it and the
    unloading after) and be done by `end`, laid out by `schedule_trip` (bisected: a later start never ends
    earlier). A week before `end` at the earliest."""

    def done(start: int) -> int:
        return schedule_trip(kind, start, [minutes], list(handling), start_minute_of_day)[0][1][1]

    low, high = end - 7 * 1440, end
    if done(low) > end:
        return low
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if done(middle) <= end else (low, middle - 1)
    return low
