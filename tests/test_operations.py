"""Daylight clock and splitting goods into vehicle loads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog import Item
from planner.dispatch import goods_weight, split_goods
from planner.vehicles import add_working_minutes, is_open, latest_start, nights, working_minutes

DAY = (6 * 60, 18 * 60)  # 06:00-18:00
START = 6 * 60  # plans start at 06:00 local


def test_work_pauses_at_night_and_resumes_in_the_morning():
    assert add_working_minutes(0, 60, DAY, START) == 60
    # 17:30 + 60 min of work: 30 min before dark, 30 min from 06:00 next day
    assert add_working_minutes(11 * 60 + 30, 60, DAY, START) == 1440 + 30
    # starting at night waits for the morning
    assert add_working_minutes(14 * 60, 10, DAY, START) == 1440 + 10
    assert add_working_minutes(100, 500, None, START) == 600


def test_working_minutes_counts_only_daylight():
    assert working_minutes(0, 1440, DAY, START) == 720
    assert working_minutes(600, 1500, DAY, START) == 120 + 60
    assert working_minutes(0, 100, None, START) == 100


@given(st.integers(0, 5000), st.integers(0, 3000))
def test_working_minutes_inverts_add_working_minutes(start, minutes):
    end = add_working_minutes(start, minutes, DAY, START)
    assert working_minutes(start, end, DAY, START) == minutes
    if minutes:
        assert is_open(end, DAY, START)


def test_nights_cover_the_dark_hours_from_the_plan_start():
    assert nights(DAY, START, 3000) == ((720, 1440), (2160, 2880))
    assert nights(None, START, 3000) == ()


UNITS = {
    "box": Item("box", "box", 2.0, 0.012),
    "paper": Item("paper", "paper", 0.005, 0.000008),
    "booth": Item("booth", "booth", 1.8, 0.016),
}


@given(
    st.dictionaries(st.sampled_from(sorted(UNITS)), st.integers(1, 20000), min_size=1),
    st.floats(50, 5000),
    st.floats(0.5, 20),
)
def test_split_goods_keeps_whole_units_and_fits_each_load(goods, cap_kg, cap_m3):
    loads = split_goods(goods, UNITS, cap_kg, cap_m3)
    total: dict[str, int] = {}
    for load in loads:
        kg, m3 = goods_weight(load, UNITS)
        assert kg <= cap_kg + 1e-6 and m3 <= cap_m3 + 1e-6
        assert all(isinstance(q, int) and q > 0 for q in load.values())
        for item, qty in load.items():
            total[item] = total.get(item, 0) + qty
    assert total == goods


def test_split_goods_refuses_an_item_bigger_than_the_vehicle():
    with pytest.raises(ValueError, match="box"):
        split_goods({"box": 1}, UNITS, 1.0, 10.0)


@given(st.integers(0, 6000), st.integers(0, 3000))
def test_latest_start_is_the_last_moment_that_still_finishes_in_time(end, minutes):
    begin = latest_start(end, minutes, DAY, START)
    assert add_working_minutes(begin, minutes, DAY, START) <= end
    assert (
        add_working_minutes(begin + 1, minutes, DAY, START) > end
        or working_minutes(begin, begin + 1, DAY, START) == 0
    )
