"""Goods arithmetic and the goods ledger, shared by the dispatcher, the re-planner and the validator: plain
data, no solver."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.catalog import Item
    from planner.plan import Route


def goods_weight(items: Mapping[str, int], units: Mapping[str, Item]) -> tuple[float, float]:
    """(kg, m3) of `items` (item id -> units); `units`: the catalog items by id."""
    kg = sum(q * units[i].unit_kg for i, q in items.items())
    m3 = sum(q * units[i].unit_m3 for i, q in items.items())
    return kg, m3


def add_goods(*parts: Mapping[str, int]) -> dict[str, int]:
    """The sum of several item id -> units mappings, sorted by item, without zero entries."""
    total: dict[str, int] = defaultdict(int)
    for part in parts:
        for item, qty in part.items():
            total[item] += qty
    return {k: v for k, v in sorted(total.items()) if v}


def subtract_goods(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """a - b per item, negative where b has more, sorted by item, without zero entries."""
    return {k: a.get(k, 0) - b.get(k, 0) for k in sorted(set(a) | set(b)) if a.get(k, 0) != b.get(k, 0)}


def goods_left(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """What is left of a after taking b: a - b per item where positive (b's extra items are ignored)."""
    return {i: q - b.get(i, 0) for i, q in sorted(a.items()) if q - b.get(i, 0) > 0}


@dataclass(frozen=True)
class StockEvent:
    """Goods arriving at a node (`sign` +1: a delivery, or a trip bringing goods back) or leaving it (-1)."""

    when: datetime
    sign: int
    goods: Mapping[str, int]
    who: str  # the trip, as a label


@dataclass
class GoodsLedger:
    """Goods in and out of every node over a set of plan routes.

    `received`: what each node was handed (stops with a delivery); `sent`: what each trip base loaded, less
    what its trips brought back; `events`: per node, arrivals and departures of goods in time order."""

    received: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    sent: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    events: dict[str, list[StockEvent]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of_routes(cls, routes: Iterable[Route], label: Callable[[Route], str] = str) -> GoodsLedger:
        """The ledger of `routes`; `label(route)` names a trip in the events."""
        ledger = cls()
        for route in routes:
            who = label(route)
            for stop in route.stops:
                if stop.deliver:
                    ledger.received[stop.node_id] = add_goods(ledger.received[stop.node_id], stop.deliver)
                    ledger.events[stop.node_id].append(StockEvent(stop.departure, 1, dict(stop.deliver), who))
            first = route.stops[0]
            if first.load:
                net = subtract_goods(first.load, route.returned)
                ledger.sent[route.base] = add_goods(ledger.sent[route.base], net)
                ledger.events[route.base].append(StockEvent(first.departure, -1, dict(first.load), who))
            if route.returned:
                ledger.events[route.base].append(
                    StockEvent(route.stops[-1].arrival, 1, dict(route.returned), who)
                )
        return ledger

    def first_short(self, node: str) -> StockEvent | None:
        """The first departure from `node` with goods that have not arrived there yet (arrivals at the same
        minute count first), or None."""
        stock: dict[str, int] = defaultdict(int)
        for event in sorted(self.events.get(node, []), key=lambda e: (e.when, -e.sign)):
            for item, qty in event.goods.items():
                stock[item] += event.sign * qty
            if any(v < 0 for v in stock.values()):
                return event
        return None
