"""`evlaunch.Scenario`: loading, and lever changes validated exactly as scenario files are."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomlkit

import evlaunch
from evlaunch.config.scenario import load_scenario

REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml"


@pytest.fixture(scope="module")
def reference() -> evlaunch.Scenario:
    return evlaunch.Scenario.load(REFERENCE)


def test_load_gives_the_validated_scenario(reference):
    assert reference.name == "xiaomi-2023"
    assert reference.config == load_scenario(REFERENCE)
    assert reference.paths == ("own", "BAIC", "Chery", "Brilliance", "BAIC_own", "Chery_own",
                               "Brilliance_own")
    assert reference.text == REFERENCE.read_text(encoding="utf-8")
    assert reference.get("product.price") == {"dist": "triangular", "low": 180000, "mode": 230000, "high": 300000}
    assert reference.get("paths.BAIC.stages.0.name") == "Agreement with BAIC"
    with pytest.raises(KeyError):
        reference.get("product.prise")


def test_load_of_a_missing_file_raises_the_cli_message(tmp_path, cli):
    missing = tmp_path / "nope.toml"
    with pytest.raises(evlaunch.ScenarioError) as raised:
        evlaunch.Scenario.load(missing)
    code, _, err = cli("validate", missing)
    assert code == 2
    assert " ".join(err.split()) == f"error: {raised.value}"


def test_with_levers_changes_the_fields_and_nothing_else(reference):
    changed = reference.with_levers({"product.price": 229_900, "paths.BAIC.stages.0.failure": 0.2})
    assert changed.config.product.price == 229_900
    assert changed.config.paths["BAIC"].stages[0].failure == 0.2
    assert reference.config.product.price != 229_900  # the original is unchanged
    before, after = tomllib.loads(reference.text), tomllib.loads(changed.text)
    before["product"]["price"] = 229_900
    before["paths"]["BAIC"]["stages"][0]["failure"] = 0.2
    assert after == before
    assert changed.changes == ("product.price = 229900", "paths.BAIC.stages.0.failure = 0.2")
    # the file's fact/assumption comments are kept
    assert "# assumption: battery size" in changed.text


def test_keyword_levers_use_double_underscores_for_dots(reference):
    by_mapping = reference.with_levers({"product.price": 250_000, "finance.budget_usd": 5e9})
    by_keywords = reference.with_levers(product__price=250_000, finance__budget_usd=5e9)
    assert by_keywords.text == by_mapping.text
    assert by_keywords.config == by_mapping.config


def test_levers_accumulate_and_a_later_value_wins(reference):
    twice = reference.with_levers(product__price=250_000).with_levers(product__price=260_000,
                                                                     target_launch="2024-09")
    assert twice.config.product.price == 260_000
    assert twice.config.target_launch == "2024-09"
    assert twice.changes == ("product.price = 260000", 'target_launch = "2024-09"')
    assert twice.text.count("Changed with evlaunch") == 1


def test_a_distribution_lever(reference):
    changed = reference.with_levers({"product.price": {"dist": "uniform", "low": 200_000, "high": 240_000}})
    assert changed.config.product.price.dist == "uniform"
    assert changed.config.product.price.bounds() == pytest.approx((200_040, 239_960))
    assert "product.price" in changed.uncertain()
    assert "product.price" not in reference.with_levers(product__price=1e5).uncertain()


@pytest.mark.parametrize("key, value", [
    ("product.price", 100),                        # outside the allowed range
    ("product.prise", 229_900),                    # no such field
    ("product.price", "cheap"),                    # not a number
    ("paths.BAIC.stages.0.failure", 1.5),          # a probability above 1
    ("paths.BAIC.fallback", "Tesla"),              # a check across fields
    ("product.price", {"dist": "normal", "mean": 2e5}),  # a distribution without its sd
    ("horizon_months", 6),
])
def test_bad_levers_raise_what_validate_prints_for_such_a_file(reference, tmp_path, cli, key, value):
    with pytest.raises(evlaunch.ScenarioError) as raised:
        reference.with_levers({key: value})
    # the same change written into a copy of the file, checked by the CLI
    edited = tomlkit.parse(REFERENCE.read_text(encoding="utf-8"))
    target = edited
    parts = key.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value
    copy = tmp_path / "xiaomi-2023.toml"
    copy.write_text(tomlkit.dumps(edited), encoding="utf-8")
    code, _, err = cli("validate", copy)
    assert code == 2
    expected = " ".join(err.removeprefix("error: ").split()).replace(str(copy), "FILE")
    assert " ".join(str(raised.value).split()).replace(str(REFERENCE), "FILE") == expected


def test_levers_that_address_nothing_say_where(reference):
    with pytest.raises(evlaunch.ScenarioError, match=r"field paths\.BAIC\.stages\.7: got index '7'; expected an "
                                                     r"item number from 0 to 2"):
        reference.with_levers({"paths.BAIC.stages.7.failure": 0.1})
    with pytest.raises(evlaunch.ScenarioError, match="expected a number, text"):
        reference.with_levers(product__price=object())
    for key in ("", "product..price", "product.price\nname = 'x'", "product.pri ce", "product.price\n"):
        with pytest.raises(evlaunch.ScenarioError, match="expected a dotted field path"):
            reference.with_levers({key: 1})


def test_assumptions_table_has_ranges_and_reasons(reference):
    table = reference.assumptions()
    price = table.set_index("field").loc["product.price"]
    assert price["distribution"].startswith("triangular")
    assert price["low"] < price["p10"] < price["p50"] < price["p90"] < price["high"]
    assert price["basis"] == "assumption" and "Lei Jun" in price["reason"]
    as_fact = table.set_index("field").loc["finance.budget_usd"]
    assert as_fact["distribution"] == "fixed" and as_fact["value"] == reference.config.finance.budget_usd
    assert set(table["field"]) >= set(reference.uncertain())
    changed = reference.with_levers(product__price=229_900).assumptions().set_index("field").loc["product.price"]
    assert changed["basis"] == "lever" and changed["value"] == 229_900


def test_check_simulates_like_validate(reference, tmp_path, cli):
    reference.check(draws=8)  # the reference scenario is valid
    # a comparable the lineup does not hold passes the schema but not the data check
    changed = reference.with_levers({"product.comparables": ["No Such Car"]})
    with pytest.raises(evlaunch.EvlaunchError) as raised:
        changed.check(draws=8)
    copy = changed.save(tmp_path / "xiaomi-2023.toml")
    code, _, err = cli("validate", copy)
    assert code == 2
    expected = " ".join(err.removeprefix("error: ").split()).replace(str(copy), "FILE")
    assert " ".join(str(raised.value).split()).replace(str(REFERENCE), "FILE") == expected
