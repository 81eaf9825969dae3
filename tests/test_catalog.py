"""The item catalog: the shipped 14 lines, the quantity rules and the checks on a catalog file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog import (
    RULES,
    Item,
    ballots_per_election,
    kit_m3,
    kit_marker,
    load_catalog,
    tps_kit,
    with_reserve,
)
from planner.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "scenarios" / "common" / "items.csv"
HEADER = "id,name,rule,per,reserve_pct,unit_kg,unit_m3,source\n"


def item(rule: str, per: int = 1, reserve: str = "0") -> Item:
    return Item("x", "X", 1.0, 0.001, rule, per, Fraction(reserve), "test")


def test_shipped_catalog_has_fourteen_documented_lines():
    items = load_catalog(CATALOG)
    assert len(items) == 14
    assert len({i.id for i in items}) == 14
    # an item packed in the ballot boxes adds no volume to a load; its own volume is still documented
    assert all(i.rule in RULES and i.source and i.unit_kg > 0 and i.volume_each > 0 for i in items)
    assert all((i.unit_m3 == 0) == bool(i.packed_in) for i in items)
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


def test_tps_kit_volume_is_its_assembled_boxes_and_flat_booths():
    items = load_catalog(CATALOG)
    by_id = {i.id: i for i in items}
    box = by_id["kotak_suara"]
    assert box.unit_m3 == pytest.approx(0.4 * 0.4 * 0.6)  # 40 x 40 x 60 cm, assembled
    kit = tps_kit(items, 500, elections=2)
    assert kit["kotak_suara"] == 2 and kit["bilik_suara"] == 4  # KPU Berau: 4 boxes, 8 booths for 2 TPS
    assert kit["surat_suara"] == 2 * 513
    assert "kemasan_pps" not in kit and "formulir_ppk" not in kit
    assert kit_m3(items, 500, 2) == pytest.approx(2 * 0.096 + 4 * by_id["bilik_suara"].unit_m3)
    assert kit_m3(items, 600, 2) == kit_m3(items, 1, 2)  # the ballots travel inside the boxes
    assert kit_marker(items, 2) == ("kotak_suara", 2)
    # everything packed inside fits in the boxes of the largest TPS
    inside = sum(q * by_id[i].volume_each for i, q in tps_kit(items, 600, 1).items() if by_id[i].packed_in)
    assert inside < 0.096


def test_packing_must_name_a_box_and_fit_in_it(tmp_path):
    path = tmp_path / "items.csv"
    header = "id,name,rule,per,reserve_pct,unit_kg,unit_m3,packed_in,source\n"
    box = "kotak,Kotak,per_election_per_tps,1,0,2,0.01,,s\n"
    path.write_text(header + box + "kertas,Kertas,per_voter_reserve,1,0,0.005,0.0001,kotak,s\n")
    with pytest.raises(InputError, match=r"contents of a 600-voter TPS \(0\.060 m3"):
        load_catalog(path)
    path.write_text(header + box + "kertas,Kertas,per_voter_reserve,1,0,0.005,0.000008,tas,s\n")
    with pytest.raises(InputError, match="packed_in: 'tas' is not an unpacked item"):
        load_catalog(path)
    path.write_text(header + box + "terpal,Terpal,per_pps,1,0,2,0.01,kotak,s\n")
    with pytest.raises(InputError, match="packed_in: only an item of the TPS kit"):
        load_catalog(path)
    path.write_text(header + box + "kertas,Kertas,per_voter_reserve,1,0,0.005,0.000008,kotak,s\n")
    paper = {i.id: i for i in load_catalog(path)}["kertas"]
    assert paper.unit_m3 == 0 and paper.volume_each == 0.000008
