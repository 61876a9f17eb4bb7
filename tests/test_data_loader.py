"""Every bundled figure carries its source; rows published after a scenario's date are withheld."""

from datetime import date

import pandas as pd
import pytest

from evlaunch.data.catalogue import CATALOGUE
from evlaunch.data.loader import bundled_path, load_table, numeric
from evlaunch.errors import DataError


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_row_with_a_figure_has_a_source(name):
    table = load_table(name)
    assert len(table.rows) > 0
    facts = table.rows[~table.rows["gap"]]
    assert facts["source"].notna().all() and (facts["source"].str.strip() != "").all()
    # a 'gap' row records something unknown: it carries no number outside its identifying columns
    gaps = table.rows[table.rows["gap"]]
    figures = gaps.drop(columns=[*CATALOGUE[name].keys, "source", "note", "published", "gap"])
    assert not figures.apply(lambda column: numeric(column).notna()).any(axis=None)


def test_bundled_tables_match_the_shared_catalogue_copy():
    import pathlib

    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    for name, info in CATALOGUE.items():
        source = shared / f"{name}.csv"
        # a table without a shared copy must say it was compiled for the package alone
        assert source.exists() != info.package_only, name
        if source.exists():
            assert bundled_path(name).read_bytes() == source.read_bytes(), name


def test_announced_rivals_are_dated_by_their_sources():
    rows = load_table("announced_rivals", as_of=date(2023, 10, 31)).rows
    assert {"Jiyue 01", "AITO M7 (new)", "Luxeed S7", "Apple car (Project Titan)"} <= set(rows["rival"])
    # nothing the table holds was published after the reference scenario's date; before Luxeed's
    # announcement (2023-09-25) the table knows only what was public then
    assert set(load_table("announced_rivals", as_of=date(2023, 10, 31)).rows["rival"]) == set(
        load_table("announced_rivals").rows["rival"])
    early = load_table("announced_rivals", as_of=date(2023, 9, 20)).rows
    assert "Luxeed S7" not in set(early["rival"]) and "Jiyue 01" not in set(early["rival"])


def test_unsourced_figure_is_refused(tmp_path):
    frame = pd.read_csv(bundled_path("battery_pack_cost"), dtype=str)
    frame.loc[0, "source"] = ""
    path = tmp_path / "packs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 2 gives a figure without a source"):
        load_table("battery_pack_cost", path=path)


def test_user_table_needs_the_bundled_columns(tmp_path):
    path = tmp_path / "packs.csv"
    path.write_text("year,usd_per_kwh,source,note\n2020,100,me,\n")
    with pytest.raises(DataError, match="lacks columns"):
        load_table("battery_pack_cost", path=path)


def test_monthly_rows_appear_five_weeks_after_the_month():
    months = load_table("china_cars_monthly_total", as_of=date(2023, 10, 31)).rows["month"]
    assert months.max() == "2023-08"  # the data README: up to 2023-08 only


def test_full_year_2023_figures_are_withheld_from_a_2023_scenario():
    annual = load_table("market_annual", as_of=date(2023, 10, 31))
    assert "2023" not in set(annual.rows["year"])
    assert annual.withheld == 2
    assert len(load_table("products_2023", as_of=date(2023, 10, 31)).rows) == 0


def test_unknown_table_is_a_clear_error():
    with pytest.raises(DataError, match="unknown table 'nope'"):
        load_table("nope")


# -- issue 14: a user's table gets the bundled tables' schema checks ------------------------------------------

def _variant(tmp_path, name, edit):
    """A copy of a bundled table with `edit(frame)` applied, written as a user's CSV."""
    frame = pd.read_csv(bundled_path(name), dtype=str, keep_default_na=False)
    frame = edit(frame) if edit is not None else frame
    path = tmp_path / f"my_{name}.csv"
    frame.to_csv(path, index=False)
    return path


def _cell(column, value, row=0):
    def edit(frame):
        frame.loc[row, column] = value
        return frame
    return edit


def _header_only(frame):
    return frame.iloc[:0]


def _repeat_first_row(frame):
    return pd.concat([frame, frame.iloc[[0]]], ignore_index=True)


BAD_TABLES = [
    # (table, edit, line, column the message must name, expectation fragment)
    ("firms", _header_only, None, None, "header but no rows"),
    ("market_annual", _header_only, None, None, "header but no rows"),
    ("china_cars_monthly_total", _header_only, None, None, "header but no rows"),
    ("policy_schedule", _header_only, None, None, "header but no rows"),
    ("china_cars_monthly_total", _cell("month", "2018-02-30"), 2, "month", "a month as YYYY-MM"),
    ("china_cars_monthly_total", _cell("month", "2023-13"), 2, "month", "month 01-12"),
    ("china_cars_monthly_total", _cell("month", "2023-00"), 2, "month", "month 01-12"),
    ("china_cars_monthly_total", _cell("month", "0000-01"), 2, "month", "year 1990..2100"),
    ("china_cars_monthly_total", _cell("month", "9999-12"), 2, "month", "year 1990..2100"),
    ("china_cars_monthly_total", _cell("month", "２０２３-01"), 2, "month", "ASCII digits"),
    ("china_cars_monthly_total", _cell("all_car_registrations", "0"), 2, "all_car_registrations", "within [1, 1e+09]"),
    ("china_bev_monthly_by_model", _cell("month", "abc", 5), 7, "month", "a month as YYYY-MM"),
    ("policy_schedule", _cell("effective_from", "2023-13-45"), 2, "effective_from", "a date as YYYY-MM-DD"),
    ("policy_schedule", _cell("announced", "2018-02-30"), 2, "announced", "that exists"),
    ("policy_schedule", _cell("instrument", "free cars"), 2, "instrument", "one of purchase subsidy"),
    ("charging_points", _cell("year", "inf"), 2, "year", "a year as YYYY"),
    ("charging_points", _cell("year", "abc"), 2, "year", "a year as YYYY"),
    ("charging_points", _cell("year", ""), 2, "year", "an empty cell"),
    ("charging_points", _cell("year", "1e300"), 2, "year", "a year as YYYY"),
    ("charging_points", _cell("public_chargers", "0", 3), 5, "public_chargers", "within [1,"),
    ("charging_points", _cell("public_chargers", "-5", 3), 5, "public_chargers", "within [1,"),
    ("battery_pack_cost", _cell("usd_per_kwh", "inf"), 2, "usd_per_kwh", "a finite number"),
    ("battery_pack_cost", _cell("year", "-5"), 2, "year", "a year as YYYY"),
    ("market_annual", _cell("pv_sales", "-5"), 2, "pv_sales", "within [0, 1e+09]"),
    ("market_annual", _cell("pv_sales", "inf"), 2, "pv_sales", "a finite number"),
    ("market_annual", _cell("year", "1e300"), 2, "year", "a year as YYYY"),
    ("lineup_2023", _cell("price_min_cny", "-5"), 2, "price_min_cny", "within [1000, 1e+08]"),
    ("lineup_2023", _cell("price_min_cny", "1e300"), 2, "price_min_cny", "within [1000, 1e+08]"),
    ("lineup_2023", _cell("sales_2023_jan_sep", "nan"), 2, "sales_2023_jan_sep", "a finite number"),
    ("firms", _cell("firm", ""), 2, "firm", "an empty cell"),
    ("new_brand_ramps", _cell("month_index", "1.5"), 2, "month_index", "a whole number"),
    ("china_cars_monthly_total", _repeat_first_row, 72, None, "repeats line 2 (month='2018-01')"),
    ("lineup_2023", _repeat_first_row, 62, None, "repeats line 2 (model='Tesla Model Y')"),
]


@pytest.mark.parametrize("name,edit,line,column,expected", BAD_TABLES,
                         ids=[f"{b[0]}-{b[2]}-{b[4][:24]}" for b in BAD_TABLES])
def test_a_bad_user_table_is_refused_naming_file_line_column_and_expectation(tmp_path, name, edit, line, column,
                                                                             expected):
    path = _variant(tmp_path, name, edit)
    with pytest.raises(DataError) as refused:
        load_table(name, date(2023, 10, 31), path)
    message = str(refused.value)
    assert f"table {name!r}" in message and str(path) in message and expected in message, message
    if line is not None:
        assert f"line {line}" in message, message
    if column is not None:
        assert f"column {column}: got" in message, message


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_the_bundled_tables_pass_their_own_schema(name):
    from evlaunch.data.loader import check_schema, read_rows

    frame, path = read_rows(name)
    check_schema(frame, CATALOGUE[name], path)  # raises on a problem
    assert set(column.name for column in CATALOGUE[name].columns) <= set(frame.columns)


def test_an_unchanged_copy_of_a_bundled_table_loads_as_the_bundled_one(tmp_path):
    path = _variant(tmp_path, "charging_points", None)
    mine = load_table("charging_points", date(2023, 10, 31), path).rows
    bundled = load_table("charging_points", date(2023, 10, 31)).rows
    pd.testing.assert_frame_equal(mine, bundled)


def test_empty_and_binary_files_are_not_readable_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="not a readable CSV"):
        load_table("firms", path=empty)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(DataError, match="not a readable CSV"):
        load_table("firms", path=binary)


def test_more_nev_than_passenger_sales_is_refused(tmp_path):
    from evlaunch.market.history import load_history

    def edit(frame):
        caam = frame.index[frame["basis"].str.startswith("CAAM") & (frame["nev_pv_sales"] != "")][0]
        frame.loc[caam, "nev_pv_sales"] = str(int(frame.loc[caam, "pv_sales"]) + 1)
        return frame

    path = _variant(tmp_path, "market_annual", edit)
    with pytest.raises(DataError, match="expected passenger NEV sales below all passenger sales"):
        load_history(date(2023, 10, 31), {"market_annual": str(path)})


def test_lineup_prices_out_of_order_are_refused(tmp_path):
    from evlaunch.market.lineup import build_lineup

    path = _variant(tmp_path, "lineup_2023", _cell("price_max_cny", "100000"))  # Model Y's minimum is 263,900
    with pytest.raises(DataError, match="Tesla Model Y.*expected a minimum price no higher than the maximum"):
        build_lineup(str(path), date(2023, 10, 31), [], ("2023-01", "2023-08"))


def test_a_published_date_is_never_computed_from_an_impossible_date():
    from evlaunch.data.catalogue import parse_period_end, parse_period_start

    for text in ("2018-02-30", "2023-13-45", "0000-01", "9999-12", "2023-13", "2023-00", "abc", ""):
        assert parse_period_end(text) is None or parse_period_end(text).year < 9999, text
        parse_period_start(text)  # no exception
    assert parse_period_end("9999-12") is None and parse_period_start("2018-02-30") is None
    assert parse_period_end("2023-06") == date(2023, 6, 30)
