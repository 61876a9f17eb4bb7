"""The base-period lineup: sourced sales per month, figures built from months published after the as-of
date replaced by the public months, prices in force in the base period (base_period_prices.csv) or a named
assumption, and the aggregates."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from evlaunch.data import load_table, numeric
from evlaunch.errors import DataError
from evlaunch.market.lineup import OTHER_PRODUCTS, build_lineup, price_band_of_model

AS_OF = date(2023, 10, 31)          # the reference scenario's cut-off: September 2023 rows are not yet public
LATER = date(2023, 12, 31)          # by then they are
ESTIMATED = ["Tesla Model 3", "BYD Han EV"]


def lineup_rows():
    return load_table("lineup_2023", AS_OF).rows.set_index("model")


def public_monthly(brand: str, model: str, as_of: date, first: str, last: str) -> np.ndarray:
    rows = load_table("china_bev_monthly_by_model", as_of).rows
    rows = rows[(rows["brand"] == brand) & (rows["model"] == model) & (rows["month"] >= first) & (rows["month"] <= last)]
    return numeric(rows["bev_registrations"]).to_numpy(float)


def test_a_summed_figure_becomes_the_mean_of_the_public_monthly_rows_of_the_base_months():
    lineup = build_lineup("lineup_2023", AS_OF, ESTIMATED, ("2023-01", "2023-08"))
    months = public_monthly("Tesla", "Model Y", AS_OF, "2023-01", "2023-08")
    assert len(months) == 8
    rate = lineup.monthly_sales[lineup.index("Tesla Model Y")]
    assert rate == pytest.approx(months.mean(), rel=1e-12)
    # the table's own figure sums nine months (Jan-Sep) and is not what the model uses
    assert rate != pytest.approx(float(lineup_rows().loc["Tesla Model Y", "sales_2023_jan_sep"]) / 9, rel=1e-3)


def test_months_published_after_the_as_of_date_are_left_out_until_they_are_public():
    base = ("2023-01", "2023-09")
    before = build_lineup("lineup_2023", AS_OF, ESTIMATED, base)
    after = build_lineup("lineup_2023", LATER, ESTIMATED, base)
    j = before.index("Tesla Model Y")
    assert before.monthly_sales[j] == pytest.approx(public_monthly("Tesla", "Model Y", AS_OF, *base).mean(), rel=1e-12)
    assert "8 public monthly" in before.sales_basis[j] and "below the top list unknown" in before.sales_basis[j]
    # once September is public the mean of the nine rows is the table's nine-month sum over nine
    nine_month_sum = float(lineup_rows().loc["Tesla Model Y", "sales_2023_jan_sep"])
    assert after.monthly_sales[after.index("Tesla Model Y")] == pytest.approx(nine_month_sum / 9, rel=1e-12)


def test_half_year_figures_are_divided_by_six_months():
    lineup = build_lineup("lineup_2023", AS_OF, ESTIMATED, ("2023-01", "2023-08"))
    rows = lineup_rows()
    half_year = [n for n, basis in zip(lineup.names, lineup.sales_basis) if basis.startswith("H1 ")]
    assert half_year
    for name in half_year:
        assert lineup.monthly_sales[lineup.index(name)] == pytest.approx(
            float(rows.loc[name, "sales_2023_jan_sep"]) / 6, rel=1e-12)


def test_models_estimated_from_monthly_rows_take_the_mean_of_their_visible_rows():
    lineup = build_lineup("lineup_2023", AS_OF, ESTIMATED, ("2023-01", "2023-08"))
    months = public_monthly("Tesla", "Model 3", AS_OF, "2023-01", "2023-08")
    j = lineup.index("Tesla Model 3")
    assert lineup.monthly_sales[j] == pytest.approx(months.mean(), rel=1e-12)
    assert lineup.sales_basis[j].startswith(f"assumption: mean of {len(months)} visible")


def test_an_estimate_for_a_model_the_lineup_does_not_hold_is_refused():
    with pytest.raises(DataError, match="Not A Car"):
        build_lineup("lineup_2023", AS_OF, [*ESTIMATED, "Not A Car"], ("2023-01", "2023-08"))


def base_period_rows(lineup: str, as_of: date):
    rows = load_table("base_period_prices", as_of).rows
    return rows[rows["lineup"] == lineup].set_index("model")


def test_prices_are_the_entry_prices_in_force_in_the_base_period_or_left_to_an_assumption():
    """Every listed model's price is its base_period_prices row's price (the entry trim's price in force in
    2023-01..08); a row that says the sources give none leaves the price to the model's own stated assumption;
    a model without a row takes the lineup's lowest price, or its segment's band when it has none."""
    lineup = build_lineup("lineup_2023", AS_OF, ESTIMATED, ("2023-01", "2023-08"))
    rows, base = lineup_rows(), base_period_rows("lineup_2023", AS_OF)
    assert (base["base_period"] == "2023-01..2023-08").all()
    assert base["source"].str.strip().str.len().gt(0).all()
    own_assumption = []
    for j, name in enumerate(lineup.names):
        if name in OTHER_PRODUCTS:
            continue
        low = float(numeric(rows.loc[[name], "price_min_cny"]).iloc[0])
        if name in base.index:
            expected = float(numeric(base.loc[[name], "price_cny"]).iloc[0])
            assert base.loc[name, "source"] == rows.loc[name, "source"]   # the lineup row's sources, copied
        else:
            expected = low
        if math.isnan(expected):
            assert math.isnan(lineup.known_price[j])
            band = lineup.price_band[j]
            assert band == (rows.loc[name, "segment"] if math.isnan(low) else price_band_of_model(name))
            if not math.isnan(low):
                own_assumption.append(name)
        else:
            assert lineup.known_price[j] == expected
            assert not math.isnan(low) and expected <= float(numeric(rows.loc[[name], "price_max_cny"]).fillna(
                np.inf).iloc[0])
    # the refreshed Model 3 (259,900-295,900, on sale from 2023-10-19) and Model Y's late-October 263,900 are
    # not what buyers paid in the base period: the RWD prices after the 2023-01-06 cut, as the notes say
    assert lineup.known_price[lineup.index("Tesla Model 3")] == 229_900
    assert lineup.known_price[lineup.index("Tesla Model Y")] == 259_900
    for name, price in (("Tesla Model 3", "229,900"), ("Tesla Model Y", "259,900")):
        assert "2023-01-06" in rows.loc[name, "note"] and price in rows.loc[name, "note"]
    assert sorted(own_assumption) == ["BYD Seal", "Wuling Hongguang Mini EV"]
    assert lineup.range_band[lineup.index("BYD Seal")] == "B"          # its range band stays its segment's


def test_every_base_period_price_is_a_number_the_lineup_row_states():
    """No invented prices: each base_period_prices figure appears in its lineup row's note or is its entry price."""
    for table, as_of in (("lineup_2023", AS_OF), ("lineup_2020", date(2021, 1, 31))):
        rows = load_table(table, as_of).rows.set_index("model")
        for name, row in base_period_rows(table, as_of).iterrows():
            price = float(numeric(pd.Series([row["price_cny"]])).iloc[0])
            if math.isnan(price):
                continue
            assert f"{price:,.0f}" in rows.loc[name, "note"] or price == float(rows.loc[name, "price_min_cny"]), name


def test_the_2020_lineup_keeps_its_single_prices():
    lineup = build_lineup("lineup_2020", date(2021, 3, 31), [], ("2020-01", "2020-12"))
    rows = load_table("lineup_2020", date(2021, 3, 31)).rows.set_index("model")
    for j, name in enumerate(lineup.names):
        if name not in OTHER_PRODUCTS and not math.isnan(lineup.known_price[j]):
            assert lineup.known_price[j] == float(rows.loc[name, "price_min_cny"])


def test_the_aggregates_close_the_lineup_with_no_price_and_no_sales_of_their_own():
    lineup = build_lineup("lineup_2023", AS_OF, ESTIMATED, ("2023-01", "2023-08"))
    assert lineup.names[-3:] == OTHER_PRODUCTS[:3]
    for name in OTHER_PRODUCTS[:3]:
        j = lineup.index(name)
        powertrain = name.split()[1]
        assert lineup.powertrains[j] == powertrain and lineup.price_band[j] == f"other_{powertrain}"
        assert math.isnan(lineup.known_price[j]) and math.isnan(lineup.monthly_sales[j])
    named = [j for j, n in enumerate(lineup.names) if n not in OTHER_PRODUCTS]
    assert np.all(lineup.monthly_sales[named] > 0)
    assert lineup.is_nev.tolist() == [p in ("BEV", "PHEV") for p in lineup.powertrains]
