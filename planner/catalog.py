"""The catalog of logistics items: what each TPS, PPS and PPK receives, and how much it weighs.

The catalog is a CSV data file (scenarios/common/items.csv) with one line per item and the columns
id, name, rule, per, reserve_pct, unit_kg, unit_m3, source (and, optional, packed_in). The rule says how the quantity follows
from the TPS and voters of a desa:

- per_tps: `per` units for every TPS;
- per_election_per_tps: `per` units for every TPS and every election held that day;
- per_voter_reserve: for every election and every TPS, the voters of the TPS plus `reserve_pct` percent,
  rounded up at that TPS, times `per` (the KPU rule for ballot papers);
- per_pps: `per` units for the PPS (desa) itself;
- per_ppk: `per` units for the PPK (kecamatan) itself.

The items of the first three rules make up the TPS kit, the unit delivered to a PPS for each of its TPS
(KPU kabupaten pack each TPS's ballots, forms, seals and small items into its ballot boxes and seal them
before distribution: KPU Berau, 21 Nov 2024). The optional column `packed_in` names the item an item
travels inside (`kotak_suara`): such an item adds its weight to a load but no volume, since the
assembled box it is packed in is counted whole. `unit_m3` in the file is always the item's own volume;
`Item.unit_m3` is the volume it adds to a load (0 when packed in another item) and `Item.own_m3` the
file's value. The contents of a 600-voter TPS must fit in its boxes (checked on load).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from planner.errors import InputError

RULES = ("per_tps", "per_election_per_tps", "per_voter_reserve", "per_pps", "per_ppk")
TPS_KIT_RULES = ("per_tps", "per_election_per_tps", "per_voter_reserve")
CONTAINER_RULES = ("per_tps", "per_election_per_tps")  # a container's count does not depend on voters
FILL_CHECK_VOTERS = 600  # the largest TPS (PKPU 2024): its contents must fit in its boxes
CATALOG_COLUMNS = ("id", "name", "rule", "per", "reserve_pct", "unit_kg", "unit_m3", "source")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
# demand tables hold one column per item id next to these
RESERVED_IDS = frozenset(
    {"node_id", "tps", "dpt", "kg", "m3", "total_kg", "total_m3", "pps_count", "kelurahan"}
)


@dataclass(frozen=True)
class Item:
    """One catalog line: the one item type of the planner (demand, dispatch, validator, reports).

    Quantities are whole units; `unit_kg` and `unit_m3` are per unit. `unit_m3` is the volume a unit adds to
    a load: 0 for an item packed inside another (`packed_in`), whose own volume is `own_m3` (None: the same
    as unit_m3). `rule`, `per` and `reserve_pct` say how many a TPS, PPS or PPK gets (empty `rule`: an item
    only known by its id and weight, e.g. in a unit test or an item a plan moves that the catalog lacks).
    """

    id: str
    name: str
    unit_kg: float
    unit_m3: float
    rule: str = ""
    per: int = 1
    reserve_pct: Fraction = Fraction(0)
    source: str = ""
    packed_in: str = ""
    own_m3: float | None = None

    @property
    def weight_known(self) -> bool:
        """False for an item whose weight or volume is not known (NaN): reports leave its totals blank."""
        return not (math.isnan(self.unit_kg) or math.isnan(self.unit_m3))

    @property
    def in_tps_kit(self) -> bool:
        """True for the items every TPS gets (its kit); False for items of the PPS or the PPK itself."""
        return self.rule in TPS_KIT_RULES

    @property
    def volume_each(self) -> float:
        """The item's own volume per unit (m3), also when it travels packed in another item."""
        return self.unit_m3 if self.own_m3 is None else self.own_m3

    def quantity_at_tps(self, voters: int, elections: int) -> int:
        """Units in the kit of one TPS with `voters` voters (0 for PPS and PPK items)."""
        return self.quantity_at_pps([voters], elections) if self.in_tps_kit else 0

    @property
    def addressed_to(self) -> str:
        """`ppk` for items the PPK keeps, `pps` for items that travel on to the desa."""
        return "ppk" if self.rule == "per_ppk" else "pps"

    def quantity_at_pps(self, voters_per_tps: Sequence[int], elections: int) -> int:
        """Units for one PPS whose TPS have these voter counts (0 for per_ppk items)."""
        tps = len(voters_per_tps)
        if self.rule == "per_tps":
            return self.per * tps
        if self.rule == "per_election_per_tps":
            return self.per * elections * tps
        if self.rule == "per_voter_reserve":
            return self.per * elections * sum(with_reserve(v, self.reserve_pct) for v in voters_per_tps)
        if self.rule == "per_pps":
            return self.per
        return 0

    def quantity_at_ppk(self) -> int:
        """Units addressed to the PPK itself."""
        return self.per if self.rule == "per_ppk" else 0


def tps_kit(items: Sequence[Item], voters: int, elections: int) -> dict[str, int]:
    """The kit of one TPS: item id -> units, for the TPS-kit items (per TPS, per election, ballots)."""
    return {i.id: q for i in items if (q := i.quantity_at_tps(voters, elections))}


def kit_m3(items: Sequence[Item], voters: int, elections: int) -> float:
    """Load volume (m3) of one TPS kit: its assembled boxes and flat booths (packed items add nothing)."""
    return sum(q * i.unit_m3 for i in items if (q := i.quantity_at_tps(voters, elections)))


def kit_marker(items: Sequence[Item], elections: int) -> tuple[str, int] | None:
    """(item id, units per kit) of an item every TPS kit holds the same number of: the box items are
    packed in, else the first per-TPS item; None without a TPS kit. Counting it counts kits."""
    containers = {i.packed_in for i in items if i.packed_in}
    fixed = [i for i in items if i.rule in CONTAINER_RULES]
    chosen = [i for i in fixed if i.id in containers] or fixed
    if not chosen:
        return None
    return chosen[0].id, chosen[0].quantity_at_tps(0, elections)


def with_reserve(voters: int, reserve_pct: Fraction) -> int:
    """Voters plus the reserve, rounded up; exact (no floating point): 400 voters + 2.5 % -> 410."""
    return math.ceil(Fraction(voters) * (1 + reserve_pct / 100))


def ballots_per_election(voters_per_tps: Sequence[int], reserve_pct: Fraction = Fraction(5, 2)) -> int:
    """Ballot papers of one election for these TPS: each TPS its voters + reserve, rounded up."""
    return sum(with_reserve(v, reserve_pct) for v in voters_per_tps)


def _number(
    text: str, field: str, kind: type, problems: list[str], where: str
) -> int | float | Fraction | None:
    text = (text or "").strip()
    try:
        if kind is int:
            value = Fraction(text)
            if value.denominator != 1:
                raise ValueError
            return int(value)
        if kind is Fraction:
            return Fraction(text)
        value = float(text)
        if not math.isfinite(value):
            raise ValueError
        return value
    except (ValueError, ZeroDivisionError):
        expected = "a whole number" if kind is int else "a number"
        problems.append(f"{where}: {field}: must be {expected} (got {text!r})")
        return None


def _parse_row(row: dict[str, str], where: str, problems: list[str]) -> Item | None:
    before = len(problems)
    item_id = (row.get("id") or "").strip()
    if not item_id or not set(item_id) <= _ID_CHARS:
        problems.append(f"{where}: id: must be lower-case letters, digits and '_' (got {item_id!r})")
    elif item_id in RESERVED_IDS or item_id.endswith(("_code", "_name", "_km2")):
        problems.append(f"{where}: id: {item_id!r} is reserved for a column of the demand tables")
    name = (row.get("name") or "").strip()
    if not name:
        problems.append(f"{where}: name: must not be empty")
    rule = (row.get("rule") or "").strip()
    if rule not in RULES:
        problems.append(f"{where}: rule: must be one of {', '.join(RULES)} (got {rule!r})")
    per = _number(row.get("per", ""), "per", int, problems, where)
    if per is not None and per < 1:
        problems.append(f"{where}: per: must be at least 1 (got {per})")
    reserve = _number(row.get("reserve_pct", "") or "0", "reserve_pct", Fraction, problems, where)
    if reserve is not None and not 0 <= reserve <= 100:
        problems.append(f"{where}: reserve_pct: must be between 0 and 100 (got {float(reserve):g})")
    if reserve and rule != "per_voter_reserve":
        problems.append(f"{where}: reserve_pct: only the rule per_voter_reserve takes a reserve")
    unit_kg = _number(row.get("unit_kg", ""), "unit_kg", float, problems, where)
    unit_m3 = _number(row.get("unit_m3", ""), "unit_m3", float, problems, where)
    for field, value in (("unit_kg", unit_kg), ("unit_m3", unit_m3)):
        if value is not None and value <= 0:
            problems.append(f"{where}: {field}: must be greater than 0 (got {value:g})")
    source = (row.get("source") or "").strip()
    if not source:
        problems.append(f"{where}: source: say where the numbers come from (or that they are an assumption)")
    packed_in = (row.get("packed_in") or "").strip()
    if packed_in and rule not in TPS_KIT_RULES:
        problems.append(
            f"{where}: packed_in: only an item of the TPS kit ({', '.join(TPS_KIT_RULES)}) is packed"
        )
    if len(problems) > before:
        return None
    load_m3 = 0.0 if packed_in else float(unit_m3)
    return Item(
        item_id,
        name,
        unit_kg=float(unit_kg),
        unit_m3=load_m3,
        rule=rule,
        per=int(per),
        reserve_pct=Fraction(reserve),
        source=source,
        packed_in=packed_in,
        own_m3=float(unit_m3),
    )


def packing_problems(items: Sequence[Item], path: Path) -> list[str]:
    """Each packed item names a container of the TPS kit, and a 600-voter TPS's contents fit in its boxes."""
    by_id = {i.id: i for i in items}
    problems = []
    for item in items:
        if not item.packed_in:
            continue
        box = by_id.get(item.packed_in)
        if box is None or box.packed_in or box.rule not in CONTAINER_RULES:
            problems.append(
                f"{path}: id {item.id!r}: packed_in: {item.packed_in!r} is not an unpacked item "
                f"of rule {' or '.join(CONTAINER_RULES)}"
            )
    if problems:
        return problems
    for box in {by_id[i.packed_in] for i in items if i.packed_in}:
        for elections in (1, 2):
            room = box.quantity_at_tps(FILL_CHECK_VOTERS, elections) * box.volume_each
            inside = sum(
                i.quantity_at_tps(FILL_CHECK_VOTERS, elections) * i.volume_each
                for i in items
                if i.packed_in == box.id
            )
            if inside > room:
                problems.append(
                    f"{path}: {box.id}: the contents of a {FILL_CHECK_VOTERS}-voter TPS ({inside:.3f} m3, "
                    f"{elections} election(s)) do not fit in its boxes ({room:.3f} m3)"
                )
    return problems


def load_catalog(path: str | Path) -> tuple[Item, ...]:
    """Read and check a catalog CSV; every problem is reported at once in one InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError("catalog file not found", source=path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the catalog as CSV ({err})", source=path) from None
    missing = [c for c in CATALOG_COLUMNS if c not in header]
    if missing:
        raise InputError(
            "catalog lacks column(s)",
            source=path,
            problems=[f"{path}: missing column {c!r}" for c in missing],
        )
    problems: list[str] = []
    items: list[Item] = []
    for line, row in enumerate(rows, start=2):
        if None in row:
            problems.append(
                f"{path}: line {line}: more fields than the header (quote text that holds a comma)"
            )
            continue
        row = {(k or "").strip(): (v if isinstance(v, str) else "") for k, v in row.items()}
        item = _parse_row(row, f"{path}: line {line}", problems)
        if item is not None:
            items.append(item)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            problems.append(f"{path}: id {item.id!r}: appears more than once")
        seen.add(item.id)
    if not rows:
        problems.append(f"{path}: the catalog has no items")
    if not problems:
        problems += packing_problems(items, path)
    if problems:
        raise InputError("invalid catalog", source=path, problems=problems)
    return tuple(items)
