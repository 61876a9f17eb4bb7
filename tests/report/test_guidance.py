"""The firm's guidance beside the forecast: the report states its percentile in words, never fits to it."""

import numpy as np

from evlaunch.report.guidance import guidance_gap, guidance_percentile_text, ordinal_percentile


def _summary(shares, chosen="own"):
    return {"guidance": {"year": 2024, "deliveries": 100_000.0, "source": "entrants.csv", "used_to_fit": False,
                         "percentile_in_forecast": shares},
            "recommended_path": {"name": chosen}}


def test_states_the_recommended_paths_percentile_and_the_range_over_paths():
    text = guidance_percentile_text(_summary({"own": 0.933, "BAIC": 0.99, "Chery": 0.75}, chosen="own"))
    assert "<b>93rd percentile</b> of the recommended path's (own) forecast of 2024 deliveries" in text
    assert "above the forecast's 80% interval" in text
    assert "between the 75th (Chery) and the 99th percentile (BAIC)" in text


def test_reads_a_percentile_inside_or_below_the_interval():
    assert "inside the forecast's 80% interval" in guidance_percentile_text(_summary({"own": 0.5}))
    assert "below the forecast's 80% interval" in guidance_percentile_text(_summary({"own": 0.05}))
    assert "between" not in guidance_percentile_text(_summary({"own": 0.5}))


def test_no_percentile_no_sentence():
    assert guidance_percentile_text(_summary({"own": None})) == ""


def test_ordinal_percentiles():
    assert [ordinal_percentile(x) for x in (0.01, 0.02, 0.033, 0.11, 0.12, 0.13, 0.21, 0.5, 0.999)] == [
        "1st", "2nd", "3rd", "11th", "12th", "13th", "21st", "50th", "100th"]


def test_guidance_gap_splits_the_year_into_not_on_sale_ramp_bound_and_reaching_the_plan():
    inf = float("inf")
    orders = np.array([0.0, 50_000, 120_000, 30_000, 100_000])
    deliveries = np.array([0.0, 20_000, 110_000, 29_000, 60_000])
    launch = np.array([inf, 6.0, 2.0, 13.0, 10.0])         # the year's last month is index 13
    gap = guidance_gap(orders, deliveries, launch, 13, 100_000)
    assert gap["not_on_sale"] == 0.2
    assert gap["ramp_bound"] == 0.5           # 50k vs 20k and 100k vs 60k bind; 120k vs 110k and 30k vs 29k do not
    assert gap["months_on_sale"] == 6.0       # 8, 12, 1, 4 months on sale
    assert gap["orders_reach"] == 0.4 and gap["deliveries_reach"] == 0.2
    nothing = guidance_gap(np.zeros(2), np.zeros(2), np.array([inf, inf]), 13, 1.0)
    assert nothing["not_on_sale"] == 1.0 and np.isnan(nothing["ramp_bound"]) and np.isnan(nothing["months_on_sale"])
