"""Node ids and leg modes: the one place that knows how an id is spelled.

Node ids are `<kind>:<code>`: `wh:64.02` (a KPU kabupaten warehouse), `ppk:64.02.14` (a kecamatan's PPK),
`pps:64.02.14.2003` (a desa's PPS), and `port:`, `jetty:`, `seaport:` for places where goods change boats.
The kabupaten code is the first five characters of the code (`64.02`).
"""

from __future__ import annotations

MODES = ("road", "river", "sea", "access")  # leg modes; `access` is the last stretch to a desa
HUB_PREFIXES = ("port:", "jetty:", "seaport:")
KABUPATEN_CODE_LENGTH = 5  # "64.02"
PAIR_JOIN = " & "  # a contingency case of several legs (N-2) is named by its leg ids joined with this


def kabupaten_of(node_id: str) -> str:
    """The kabupaten code of a node (`ppk:64.02.14` -> `64.02`); "" when the id has no code."""
    return node_id.split(":", 1)[1][:KABUPATEN_CODE_LENGTH] if ":" in node_id else ""


def is_pps(node_id: str) -> bool:
    """True for a desa's PPS node."""
    return node_id.startswith("pps:")


def is_ppk(node_id: str) -> bool:
    """True for a kecamatan's PPK node."""
    return node_id.startswith("ppk:")


def is_hub(node_id: str) -> bool:
    """True for a port, jetty or seaport: where goods are handed from one vehicle to a boat."""
    return node_id.startswith(HUB_PREFIXES)


def is_warehouse(node_id: str) -> bool:
    """True for a KPU warehouse node."""
    return node_id.startswith("wh:")


def case_legs(case_id: str) -> list[str]:
    """The legs of a contingency case: one leg id (N-1) or several joined by PAIR_JOIN (N-2)."""
    return case_id.split(PAIR_JOIN)


def ppk_of_kecamatan(kecamatan_code: str) -> str:
    """The PPK node id of a kecamatan (`64.02.14` -> `ppk:64.02.14`)."""
    return f"ppk:{kecamatan_code}"
