"""Key figures of a plan (km, hours, cost, completion, slack per kabupaten), from its routes: no solver."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from planner.plan import Plan

if TYPE_CHECKING:
    from planner.validate import Expectations


def plan_kpis(plan: Plan, expect: Expectations, kabupaten: Iterable[str]) -> dict:
    """km and hours per mode, cost, vehicles used, completion time and slack per kabupaten."""
    legs = expect.network.legs
    per_kab: dict[str, dict] = {}
    for code in kabupaten:
        per_kab[code] = {
            "vehicles_used": 0,
            "trips": 0,
            "km_by_mode": {m: 0.0 for m in ("road", "river", "sea", "access")},
            "hours_by_mode": {m: 0.0 for m in ("road", "river", "sea", "access")},
            "cost_idr": 0.0,
            "ppk_completion": None,
            "pps_completion": None,
            "slack_hours_ppk": None,
            "slack_hours_pps": None,
            "unserved": 0,
        }
    used_days: dict[tuple[str, str], set] = defaultdict(set)
    for route in plan.routes:
        k = per_kab[route.kabupaten_code]
        kind = expect.vehicles[route.vehicle_id].kind
        k["trips"] += 1
        for leg_id in route.legs:
            leg = legs.loc[leg_id]
            speed = kind.speeds.speed_on(leg)
            k["km_by_mode"][leg["mode"]] += float(leg["length_km"])
            k["hours_by_mode"][leg["mode"]] += float(leg["length_km"]) / speed if speed else 0.0
            k["cost_idr"] += float(leg["length_km"]) * kind.cost_per_km
        first, last = route.stops[0].arrival, route.stops[-1].arrival
        day = first.date()
        while day <= last.date():
            used_days[(route.kabupaten_code, route.vehicle_id)].add(day)
            day += timedelta(days=1)
        for stop in route.stops:
            if not stop.deliver:
                continue
            tier_key, deadline = (
                ("ppk", expect.ppk_deadline)
                if stop.node_id.startswith("ppk:")
                else ("pps", expect.pps_deadline)
            )
            if stop.node_id.startswith(("ppk:", "pps:")):
                done = k[f"{tier_key}_completion"]
                k[f"{tier_key}_completion"] = max(done, stop.arrival) if done else stop.arrival
                slack = (deadline - stop.arrival).total_seconds() / 3600
                old = k[f"slack_hours_{tier_key}"]
                k[f"slack_hours_{tier_key}"] = min(old, slack) if old is not None else slack
    for (code, vehicle_id), days in used_days.items():
        per_kab[code]["vehicles_used"] += 1
        per_kab[code]["cost_idr"] += len(days) * expect.vehicles[vehicle_id].kind.cost_per_day
    for u in plan.unserved:
        per_kab[u.kabupaten_code]["unserved"] += 1
    for k in per_kab.values():
        for key in ("ppk_completion", "pps_completion"):
            k[key] = k[key].isoformat() if k[key] else None
        for key in ("slack_hours_ppk", "slack_hours_pps"):
            k[key] = round(k[key], 2) if k[key] is not None else None
        k["km_by_mode"] = {m: round(v, 1) for m, v in k["km_by_mode"].items()}
        k["hours_by_mode"] = {m: round(v, 1) for m, v in k["hours_by_mode"].items()}
        k["cost_idr"] = round(k["cost_idr"])
    totals = {
        "vehicles_used": sum(k["vehicles_used"] for k in per_kab.values()),
        "trips": sum(k["trips"] for k in per_kab.values()),
        "km_by_mode": {
            m: round(sum(k["km_by_mode"][m] for k in per_kab.values()), 1)
            for m in ("road", "river", "sea", "access")
        },
        "hours_by_mode": {
            m: round(sum(k["hours_by_mode"][m] for k in per_kab.values()), 1)
            for m in ("road", "river", "sea", "access")
        },
        "cost_idr": sum(k["cost_idr"] for k in per_kab.values()),
        "unserved": len(plan.unserved),
        "pps_completion": max(
            (k["pps_completion"] for k in per_kab.values() if k["pps_completion"]), default=None
        ),
    }
    return {"total": totals, "kabupaten": per_kab}
