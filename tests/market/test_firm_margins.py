"""Reported gross margins as public at an as-of date (market.firm_margins)."""

from datetime import date

import pytest

from evlaunch.errors import ScenarioError
from evlaunch.market.firm_margins import period_end, reported_margins


def test_periods_end_where_they_say():
    assert period_end("2022") == (2022, 12)
    assert period_end("2023Q2") == (2023, 6)
    assert period_end("H1 2023") == (2023, 6)
    with pytest.raises(ValueError, match="unreadable"):
        period_end("FY22")


def test_the_latest_public_period_and_the_vehicle_margin_win():
    found = reported_margins(date(2023, 10, 31), ["Tesla (global)", "Li Auto", "Great Wall"])
    # 2023Q3 has both a company (17.9%) and an automotive margin (16.3%): the automotive one is used
    assert (found["Tesla (global)"].period, found["Tesla (global)"].value) == ("2023Q3", 0.163)
    assert found["Tesla (global)"].margin_type.startswith("automotive")
    assert (found["Li Auto"].period, found["Li Auto"].value) == ("2023Q2", 0.21)
    assert (found["Great Wall"].period, found["Great Wall"].value) == ("2022", 0.1642)


def test_rows_published_after_the_as_of_date_are_not_read():
    # BYD's 2023Q2 and Q3 rows were published 2023-10-30: as of 2023-10-29 the latest is full-year 2022
    assert reported_margins(date(2023, 10, 29), ["BYD"])["BYD"].period == "2022"
    assert reported_margins(date(2023, 10, 31), ["BYD"])["BYD"].period == "2023Q3"
    with pytest.raises(ScenarioError, match=r"market.margin_firms: firm 'BYD' has no row .* 2021-03-31"):
        reported_margins(date(2021, 3, 31), ["BYD"])
