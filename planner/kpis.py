"""Key figures of a plan (km, hours, cost, completion, slack per kabupaten), from its routes: no solver.

Used by the pipeline and the re-plan (which store them in the plan), by the validator (which recomputes
them) and by contingency analysis (which compares a case with the baseline).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from planner.nodes import MODES, is_ppk, is_pps
from planner.paths import leg_travel_hours
from planner.plan import KabupatenKpis, Plan, PlanKpis, Route, TotalKpis
from planner.vehicles import VehicleType

if TYPE_CHECKING:
    from planner.validate import Expectations


@dataclass
class Travel:
    """km and hours moving per leg mode, summed over routes."""

    km_by_mode: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MODES, 0.0))
    hours_by_mode: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MODES, 0.0))

    def add(self, route: Route, kind: VehicleType, legs: pd.DataFrame) -> None:
        """Add the legs of `route`, driven by a vehicle of `kind`; `legs`: the network's leg table."""
        for leg_id in route.legs:
            leg = legs.loc[leg_id]
            self.km_by_mode[leg["mode"]] += float(leg["length_km"])
            self.hours_by_mode[leg["mode"]] += leg_travel_hours(leg, kind.speeds) or 0.0

    @property
    def km(self) -> float:
        return sum(self.km_by_mode.values())

    @property
    def hours(self) -> float:
        return sum(self.hours_by_mode.values())


@dataclass
class _Tally:
    travel: Travel = field(default_factory=Travel)
    trips: int = 0
    vehicle_days: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    km_cost: float = 0.0
    completion: dict[str, datetime] = field(default_factory=dict)  # "ppk" / "pps" -> last delivery
    slack_h: dict[str, float] = field(default_factory=dict)  # "ppk" / "pps" -> least hours to the deadline
    unserved: int = 0

    def deliveries(self, route: Route, deadlines: Mapping[str, datetime]) -> None:
        for stop in route.stops:
            tier = "ppk" if is_ppk(stop.node_id) else "pps" if is_pps(stop.node_id) else None
            if not stop.deliver or tier is None:
                continue
            done = self.completion.get(tier)
            self.completion[tier] = max(done, stop.arrival) if done else stop.arrival
            slack = (deadlines[tier] - stop.arrival).total_seconds() / 3600
            self.slack_h[tier] = min(self.slack_h.get(tier, slack), slack)

    def cost(self, day_cost: Mapping[str, float]) -> int:
        return round(self.km_cost + sum(len(days) * day_cost[v] for v, days in self.vehicle_days.items()))

    def kpis(self, day_cost: Mapping[str, float]) -> KabupatenKpis:
        def when(tier: str) -> str | None:
            return self.completion[tier].isoformat() if tier in self.completion else None

        def slack(tier: str) -> float | None:
            return round(self.slack_h[tier], 2) if tier in self.slack_h else None

        return KabupatenKpis(
            vehicles_used=len(self.vehicle_days),
            trips=self.trips,
            km_by_mode=_rounded(self.travel.km_by_mode),
            hours_by_mode=_rounded(self.travel.hours_by_mode),
            cost_idr=self.cost(day_cost),
            ppk_completion=when("ppk"),
            pps_completion=when("pps"),
            slack_hours_ppk=slack("ppk"),
            slack_hours_pps=slack("pps"),
            unserved=self.unserved,
        )


def _rounded(by_mode: Mapping[str, float]) -> dict[str, float]:
    return {m: round(v, 1) for m, v in by_mode.items()}


def _days(route: Route) -> set:
    first, last = route.stops[0].arrival.date(), route.stops[-1].arrival.date()
    return {first + timedelta(days=d) for d in range((last - first).days + 1)}


def plan_kpis(plan: Plan, expect: Expectations, kabupaten: Iterable[str]) -> PlanKpis:
    """km and hours per mode, cost, vehicles used, completion time and slack, per kabupaten and in total.

    `expect` gives the network, the vehicles and the deadlines; `kabupaten`: the codes to report (every
    route and unserved stop of the plan must belong to one of them). A vehicle costs its cost per day for
    every calendar day one of its trips is out."""
    legs = expect.network.legs
    deadlines = {"ppk": expect.ppk_deadline, "pps": expect.pps_deadline}
    tally = {code: _Tally() for code in kabupaten}
    for route in plan.routes:
        t = tally[route.kabupaten_code]
        kind = expect.vehicles[route.vehicle_id].kind
        t.trips += 1
        t.travel.add(route, kind, legs)
        for leg_id in route.legs:
            t.km_cost += float(legs.at[leg_id, "length_km"]) * kind.cost_per_km
        t.vehicle_days[route.vehicle_id] |= _days(route)
        t.deliveries(route, deadlines)
    for u in plan.unserved:
        tally[u.kabupaten_code].unserved += 1
    day_cost = {v: spec.kind.cost_per_day for v, spec in expect.vehicles.items()}
    per_kab = {code: t.kpis(day_cost) for code, t in tally.items()}
    completions = [k.pps_completion for k in per_kab.values() if k.pps_completion]
    total = TotalKpis(
        vehicles_used=sum(k.vehicles_used for k in per_kab.values()),
        trips=sum(k.trips for k in per_kab.values()),
        km_by_mode={m: round(sum(k.km_by_mode[m] for k in per_kab.values()), 1) for m in MODES},
        hours_by_mode={m: round(sum(k.hours_by_mode[m] for k in per_kab.values()), 1) for m in MODES},
        cost_idr=sum(k.cost_idr for k in per_kab.values()),
        unserved=len(plan.unserved),
        pps_completion=max(completions, default=None),
    )
    return PlanKpis(total=total, kabupaten=per_kab)
