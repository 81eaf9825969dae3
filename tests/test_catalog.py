"""The item catalog: the shipped 14 lines, the quantity rules and the checks on a catalog file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog import RULES, Item, ballots_per_election, load_catalog, with_reserve
from planner.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "scenarios" / "common" / "items.csv"
HEADER = "id,name,rule,per,reserve_pct,unit_kg,unit_m3,source\n"


def item(rule: str, per: int = 1, reserve: str = "0") -> Item:
    return Item("x", "X", rule, per, Fraction(reserve), 1.0, 0.001, "test")


def test_shipped_catalog_has_fourteen_documented_lines():
    items = load_catalog(CATALOG)
    assert len(items) == 14
    assert len({i.id for i in items}) == 14
    assert all(i.rule in RULES and i.source and i.unit_kg > 0 and i.unit_m3 > 0 for i in items)
    ballots = [i for i in items if i.rule == "per_voter_reserve"]
    assert [(b.id, b.reserve_pct) for b in ballots] == [("surat_suara", Fraction(5, 2))]
    by_id = {i.id: i for i in items}
    assert by_id["kotak_suara"].rule == "per_election_per_tps"  # one box per election per TPS
    assert {i.rule for i in items} == set(RULES)  # every rule is used, incl. PPS and PPK items


def test_reserve_is_exact_and_rounded_up_per_tps():
    assert with_reserve(400, Fraction(5, 2)) == 410
    assert with_reserve(1, Fraction(5, 2)) == 2
    assert with_reserve(0, Fraction(5, 2)) == 0
    assert with_reserve(600, Fraction(5, 2)) == 615
    assert with_reserve(599, Fraction(5, 2)) == 614  # 613.975 rounds up
    # rounding at each TPS gives more than rounding the desa total once
    assert ballots_per_election([101, 100, 100]) == 104 + 103 + 103
    assert ballots_per_election([101, 100, 100]) > with_reserve(301, Fraction(5, 2))


@given(st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=20), st.integers(1, 3))
def test_rules_scale_with_tps_elections_and_voters(voters, elections):
    tps = len(voters)
    assert item("per_tps", per=4).quantity_at_pps(voters, elections) == 4 * tps
    assert item("per_election_per_tps").quantity_at_pps(voters, elections) == elections * tps
    ballots = item("per_voter_reserve", reserve="2.5").quantity_at_pps(voters, elections)
    assert ballots == elections * sum(-(-v * 1025 // 1000) for v in voters)
    assert sum(voters) * elections <= ballots <= elections * (sum(voters) * 1.025 + tps)
    assert item("per_pps", per=2).quantity_at_pps(voters, elections) == 2
    assert item("per_ppk", per=2).quantity_at_pps(voters, elections) == 0
    assert item("per_ppk", per=2).quantity_at_ppk() == 2
    assert item("per_tps").quantity_at_ppk() == 0


def test_every_problem_of_a_bad_catalog_is_reported(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER
        + "box,Kotak,per_tps,1,0,2,0.01,KPU\n"
        + "box,Kotak lagi,per_tps,1,0,2,0.01,KPU\n"  # duplicate id
        + "ink,Tinta,per_bottle,1,0,0.1,0.001,KPU\n"  # unknown rule
        + "seal,Segel,per_tps,1,0,-0.2,0.001,KPU\n"  # negative weight
        + "form,Formulir,per_tps,x,0,1,0.001,\n"  # per not a number, no source
        + "pen,Pena, spidol,per_tps,1,0,1,0.001,KPU\n"  # unquoted comma
        + "tps,Reserved,per_tps,1,0,1,0.001,KPU\n",  # reserved id
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        load_catalog(path)
    text = str(err.value)
    for expected in (
        "id 'box': appears more than once",
        "line 4: rule: must be one of",
        "line 5: unit_kg: must be greater than 0",
        "line 6: per: must be a whole number",
        "line 6: source:",
        "line 7: more fields than the header",
        "line 8: id: 'tps' is reserved",
    ):
        assert expected in text
    assert str(path) in text


def test_missing_catalog_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.csv")
    path = tmp_path / "items.csv"
    path.write_text("id,name,rule\nbox,Kotak,per_tps\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_catalog(path)
    assert "missing column 'unit_kg'" in str(err.value)
