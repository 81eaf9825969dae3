"""All-pairs shortest paths on the Kaltim network per vehicle class (issue 2 target: seconds, not minutes).

    .venv/bin/python bench/network_paths.py

Prints one row per mode set: nodes, wall seconds for all-pairs hours + km + predecessors, and the ratio to a
networkx Dijkstra baseline run in the same process on a sample of sources (scaled to all pairs).
"""

from __future__ import annotations

import time
from pathlib import Path

import networkx as nx

from planner.network import load_network
from planner.paths import TravelSpeeds, leg_hours, shortest_paths

CLASSES = {
    "road (truck)": TravelSpeeds({"road": 35.0}),
    "road+river (longboat crew)": TravelSpeeds(
        {"road": 35.0, "river_up": 10.0, "river_down": 15.0}, rapids_kmh=6
    ),
    "river+sea (speedboat)": TravelSpeeds({"river": 30.0, "sea": 30.0}),
    "sea (navy vessel)": TravelSpeeds({"sea": 18.0}),
    "all modes": TravelSpeeds({"road": 35.0, "river": 12.0, "sea": 18.0}),
}


def networkx_seconds_per_source(network, speeds: TravelSpeeds, sample: int = 20) -> float:
    hours = leg_hours(network, speeds)
    graph = nx.DiGraph()
    for (leg, row), h in zip(network.legs.iterrows(), hours, strict=True):
        if h < float("inf"):
            graph.add_edge(row["from_node"], row["to_node"], weight=h, leg=leg)
            if row["mode"] != "river":
                graph.add_edge(row["to_node"], row["from_node"], weight=h, leg=leg)
    sources = sorted(graph.nodes)[:sample]
    start = time.perf_counter()
    for s in sources:
        nx.single_source_dijkstra(graph, s, weight="weight")
    return (time.perf_counter() - start) / len(sources)


def main() -> None:
    network = load_network(Path(__file__).resolve().parents[1] / "networks" / "kaltim")
    n = len(network.nodes)
    print(f"{'vehicle class':30} {'nodes':>6} {'all-pairs s':>12} {'networkx est. s':>16} {'speed-up':>9}")
    for name, speeds in CLASSES.items():
        start = time.perf_counter()
        shortest_paths(network, speeds)
        ours = time.perf_counter() - start
        baseline = networkx_seconds_per_source(network, speeds) * n
        print(f"{name:30} {n:>6} {ours:>12.2f} {baseline:>16.2f} {baseline / ours:>8.1f}x")


if __name__ == "__main__":
    main()
