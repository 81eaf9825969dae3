"""Goods arithmetic shared by the dispatcher and the validator: plain data, no solver."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.catalog import Item


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
