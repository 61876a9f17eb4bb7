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
    for name in CATALOGUE:
        source = shared / f"{name}.csv"
        if source.exists():
            assert bundled_path(name).read_bytes() == source.read_bytes(), name


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
