"""Issue 11 acceptance on a solved plan: river km per kabupaten, water-only desa reached by boat, tier-2 drives
to a port, as measured for networks/kaltim/DATA.md.

    python -m bench.ground_check out/kaltim/plan.json [--network networks/kaltim] [--fleet FLEET.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from planner.fleet import load_fleet_spec
from planner.network import load_network
from planner.plan import read_plan

ROOT = Path(__file__).resolve().parents[1]
HANDOVER_LIMIT_KM = 150.0


def ground_check(plan_path: Path, network_folder: Path, fleet_file: Path) -> dict:
    """The numbers of issue 11's acceptance for one plan on its network; a boat is a type without road mode."""
    plan = read_plan(plan_path)
    network = load_network(network_folder)
    boats = {t for t, spec in load_fleet_spec(fleet_file).vehicle_types.items() if "road" not in spec.modes}

    def _is_boat(vehicle_type: str) -> bool:
        return vehicle_type in boats

    legs = network.legs
    river_km = {code: k.km_by_mode["river"] for code, k in sorted(plan.kpis.kabupaten.items())}
    access = pd.read_csv(network_folder / "access.csv", dtype={"desa_code": str})
    planned = set(plan.kpis.kabupaten)
    water = access[(access["access"] == "water") & access["desa_code"].str[:5].isin(planned)]
    water_only = {f"pps:{code}": name for code, name in zip(water["desa_code"], water["name"], strict=True)}
    served_by: dict[str, set[str]] = {}
    for route in plan.routes:
        for stop in route.stops:
            if stop.deliver and stop.node_id in water_only:
                served_by.setdefault(stop.node_id, set()).add(route.vehicle_type)
    not_by_boat = sorted(
        f"{water_only[n]} ({n})" for n in water_only if not any(_is_boat(t) for t in served_by.get(n, set()))
    )
    longest_handover = 0.0
    over = []
    for route in plan.routes:
        if route.tier != 2 or _is_boat(route.vehicle_type):
            continue
        km = 0.0
        for leg_id in route.legs:
            km += float(legs.at[leg_id, "length_km"])
            to_node = legs.at[leg_id, "to_node"]
            if to_node.startswith(("port:", "jetty:", "seaport:")) and any(
                s.node_id == to_node and s.deliver for s in route.stops
            ):
                longest_handover = max(longest_handover, km)
                if km > HANDOVER_LIMIT_KM:
                    over.append(f"{route.vehicle_id}#{route.trip} -> {to_node}: {km:.0f} km")
                break
    return {
        "river_km": river_km,
        "water_only_desa": len(water_only),
        "water_only_not_by_boat": not_by_boat,
        "water_only_unserved": sorted(u.node_id for u in plan.unserved if u.node_id in water_only),
        "longest_tier2_drive_to_a_port_km": round(longest_handover, 1),
        "tier2_drives_to_a_port_over_150_km": over,
        "unserved": [f"{u.node_id} ({u.reason})" for u in plan.unserved],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--network", type=Path, default=ROOT / "networks" / "kaltim")
    parser.add_argument("--fleet", type=Path, default=ROOT / "scenarios" / "common" / "fleet-kaltim.yaml")
    args = parser.parse_args()
    for key, value in ground_check(args.plan, args.network, args.fleet).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
