"""Bad scenario input gets exit 2 and a message naming the file, the field and what was expected."""

import re

import pytest

from evlaunch.config.scenario import parse_scenario, quantities, uncertain_parameters
from evlaunch.errors import ScenarioError

BAD_EDITS = [
    # (description, old text, new text, field the message must name, expectation fragment)
    ("negative duration", 'months = { dist = "triangular", low = 1, mode = 4, high = 12 }',
     "months = -3", "paths.own.stages.0.months", "within [0, 240]"),
    ("probability above one", 'failure = { dist = "triangular", low = 0.15, mode = 0.35, high = 0.6 }',
     "failure = 1.5", "paths.BAIC.stages.0.failure", "within [0, 1]"),
    ("unknown distribution", 'price = { dist = "triangular", low = 180000, mode = 230000, high = 300000 }',
     'price = { dist = "gamma", low = 1, high = 2 }', "product.price", "dist = one of"),
    ("triangular out of order", 'price = { dist = "triangular", low = 180000, mode = 230000, high = 300000 }',
     'price = { dist = "triangular", low = 300000, mode = 230000, high = 180000 }', "product.price",
     "low <= mode <= high"),
    ("text for a number", "horizon_months = 62", 'horizon_months = "sixty"', "horizon_months", "a number"),
    ("bad month", 'target_launch = "2024-06"', 'target_launch = "2024-13"', "target_launch", "pattern"),
    ("unknown field", 'powertrain = "BEV"              # fact', 'powertrian = "BEV"  # fact', "product.powertrian",
     "no such field"),
    ("fallback to missing path", 'fallback = "own"               # assumption: if the BAIC',
     'fallback = "Tesla"  # assumption: if the BAIC', "paths.BAIC.fallback", "one of the paths"),
    ("nan", "vat_rate = 0.13", "vat_rate = nan", "finance.vat_rate", "finite"),
    ("start before as_of", 'start = "2023-11"', 'start = "2023-09"', "start", "a month after the as-of month"),
    ("horizon too long", "horizon_months = 62", "horizon_months = 5000", "horizon_months", "less than or equal"),
    ("unbounded normal for a probability", 'failure = { dist = "triangular", low = 0.03, mode = 0.10, high = 0.25 }',
     'failure = { dist = "normal", mean = 0.1, sd = 0.2 }', "paths.own.stages.0.failure", "truncate"),
    ("gross margin above one", 'gross_margin = { dist = "triangular", low = 0.163, mode = 0.1896, high = 0.2212 }',
     "gross_margin = 3.0", "market.gross_margin", "within [-0.5, 0.9]"),
    ("unknown price sensitivity", 'price_sensitivity = "china_margins"', 'price_sensitivity = "china"',
     "market.price_sensitivity", "'china_margins' or 'us_elasticity'"),
    ("US elasticity chosen without one", 'price_sensitivity = "china_margins"', 'price_sensitivity = "us_elasticity"',
     "market", "needs market.own_price_elasticity"),
    ("wrong powertrain", 'powertrain = "BEV"              # fact', 'powertrain = "steam"  # fact',
     "product.powertrain", "'BEV' or 'PHEV'"),
    ("unknown plant", 'plant = "own"                  # fact: the Yizhuang plant', 'plant = "Yizhuang"  # fact',
     "paths.own.plant", "'partner' or 'own'"),
    ("partner plant with no partner", 'plant = "own"                  # fact: the Yizhuang plant',
     'plant = "partner"  # fact', "paths.own", "`partner` naming the firm whose plant"),
    ("partner licence in the own plant with no partner", 'partner = "Chery"\nlicence = "partner"\nplant = "own"',
     'licence = "partner"\nplant = "own"', "paths.Chery_own", "`partner` naming the firm whose licence"),
]


@pytest.mark.parametrize("description,old,new,field,expected", BAD_EDITS, ids=[b[0] for b in BAD_EDITS])
def test_bad_input_names_field_and_expectation(reference_text, tmp_path, cli, description, old, new, field,
                                               expected):
    assert old in reference_text, f"test setup: {old!r} not in the reference scenario"
    path = tmp_path / "bad.toml"
    path.write_text(reference_text.replace(old, new, 1), encoding="utf-8")
    code, out, err = cli("validate", path)
    assert code == 2
    message = " ".join(err.split())
    assert str(path) in message and field in message and expected in message, message
    assert "Traceback" not in err + out


def test_reference_scenario_validates(cli, reference_path):
    code, out, err = cli("validate", reference_path)
    assert code == 0, err
    assert "valid" in out


def test_not_toml_and_missing_file(tmp_path, cli):
    path = tmp_path / "x.toml"
    path.write_text("name = [unclosed", encoding="utf-8")
    code, _, err = cli("validate", path)
    assert code == 2 and "not valid TOML" in err
    code, _, err = cli("validate", tmp_path / "missing.toml")
    assert code == 2 and "no such scenario file" in err


def test_every_quantity_in_the_reference_is_a_marked_fact_or_assumption(reference_text):
    """Each parameter line carries 'fact:' or 'assumption:' on it or in the comment lines just above."""
    lines = reference_text.splitlines()
    unmarked = []
    for number, line in enumerate(lines):
        code = line.split("#", 1)[0]
        if not re.match(r"^\s*[A-Za-z_0-9]+\s*=\s*[-0-9{\[]", code) or code.strip().startswith(("name", "label")):
            continue
        context = [line] + [lines[k] for k in range(max(number - 3, 0), number) if lines[k].lstrip().startswith("#")]
        if not any(("assumption" in c or "fact:" in c) for c in context):
            key = code.split("=")[0].strip()
            if key not in {"max_p_budget_exceeded", "horizon_months"}:
                unmarked.append(f"line {number + 1}: {line.strip()}")
    assert not unmarked, "\n".join(unmarked)


def test_distributions_are_found_and_fixed_values_kept(reference_text):
    scenario = parse_scenario(reference_text, "ref")
    uncertain = uncertain_parameters(scenario)
    assert "product.price" in uncertain and "paths.BAIC.stages.0.months" in uncertain
    assert quantities(scenario)["finance.budget_usd"] == 10e9


def test_huge_file_is_refused():
    with pytest.raises(ScenarioError, match="larger than"):
        parse_scenario("x = 1\n" * 300_000, "big.toml")


# -- issue 14: NaN hidden in distributions, lax types inside them, dates --------------------------------------

NAN_NORMAL = '{{ dist = "normal", mean = 1e308, sd = 1, low = {low}, high = {high} }}'
BRILLIANCE_AGREEMENT = ('failure = { dist = "triangular", low = 0.3, mode = 0.5, high = 0.7 }  # assumption: '
                        'Brilliance defaulted')
PRICE = 'price = { dist = "triangular", low = 180000, mode = 230000, high = 300000 }'
HOSTILE_EDITS = [
    ("NaN normal on a stage's failure odds", BRILLIANCE_AGREEMENT,
     "failure = " + NAN_NORMAL.format(low=0.3, high=0.7) + "  # assumption: Brilliance defaulted",
     "paths.Brilliance.stages.0.failure", "cannot be sampled"),
    ("NaN normal on a cost", 'rnd_per_month = { dist = "triangular", low = 2e8, mode = 3.5e8, high = 5e8 }',
     "rnd_per_month = " + NAN_NORMAL.format(low=2e8, high=5e8), "finance.rnd_per_month", "cannot be sampled"),
    ("NaN normal on the price", PRICE, "price = " + NAN_NORMAL.format(low=180000, high=300000), "product.price",
     "draws are finite numbers"),
    ("overflowing triangular", PRICE, 'price = { dist = "triangular", low = -1e308, mode = 0, high = 1e308 }',
     "product.price", "cannot be sampled"),
    ("overflowing log-normal", PRICE, 'price = { dist = "lognormal", median = 200000, sigma = 1e6 }', "product.price",
     "cannot be sampled"),
    ("bool inside a distribution", PRICE, 'price = { dist = "normal", mean = true, sd = 1 }', "product.price.mean",
     "a number"),
    ("string inside a distribution", PRICE, 'price = { dist = "normal", mean = 230000, sd = "1" }',
     "product.price.sd", "a number"),
    ("string for the budget odds", "max_p_budget_exceeded = 0.10", 'max_p_budget_exceeded = "0.5"',
     "recommendation.max_p_budget_exceeded", "a number"),
    ("bool for the budget odds", "max_p_budget_exceeded = 0.10", "max_p_budget_exceeded = true",
     "recommendation.max_p_budget_exceeded", "a number"),
    ("nan for the budget odds", "max_p_budget_exceeded = 0.10", "max_p_budget_exceeded = nan",
     "recommendation.max_p_budget_exceeded", "greater than or equal"),
    ("target launch long ago", 'target_launch = "2024-06"', 'target_launch = "1990-01"', "target_launch",
     "within the simulated months 2023-11..2028-12"),
    ("target launch beyond the horizon", 'target_launch = "2024-06"', 'target_launch = "2029-01"', "target_launch",
     "within the simulated months"),
    ("start far after the as-of date", 'start = "2023-11"', 'start = "2099-12"', "start",
     "within 24 months after the as-of month 2023-10"),
    ("non-ASCII digits in a month", 'start = "2023-11"', 'start = "２０２３-11"', "start", "pattern"),
    ("Arabic-Indic digits in a month", 'target_launch = "2024-06"', 'target_launch = "٢٠٢٤-06"', "target_launch",
     "pattern"),
    ("competitor launch before the base period", 'month = "2023-11"\npowertrain = "BEV"',
     'month = "2010-01"\npowertrain = "BEV"', "competition.launches.0.month", "after the base period"),
    ("extra subsidy ends before it starts", 'extra_subsidy_to = "2024-12"',
     'extra_subsidy_from = "2025-06"\nextra_subsidy_to = "2024-12"', "policy.extra_subsidy_from",
     "no later than the last"),
    ("extra subsidy over before the start", 'extra_subsidy_to = "2024-12"', 'extra_subsidy_to = "2020-12"',
     "policy.extra_subsidy_to", "within the simulated months"),
    ("as_of as a number", "as_of = 2023-10-31", "as_of = 1700000000", "as_of", "a date"),
    ("unknown table key", "[market]\n", '[data.tables]\nlineup_2023 = "/etc/passwd"\n\n[market]\n',
     "data.tables.lineup_2023", "one of china_cars_monthly_total"),
    ("table that is not a CSV", "[market]\n", '[data.tables]\nfirms = "/etc/passwd"\n\n[market]\n',
     "data.tables.firms", "a path to a .csv file"),
]


@pytest.mark.parametrize("description,old,new,field,expected", HOSTILE_EDITS, ids=[b[0] for b in HOSTILE_EDITS])
def test_hostile_values_are_refused_naming_the_field(reference_text, tmp_path, cli, description, old, new, field,
                                                     expected):
    assert reference_text.count(old) == 1, f"test setup: {old!r} not once in the reference scenario"
    path = tmp_path / "bad.toml"
    path.write_text(reference_text.replace(old, new), encoding="utf-8")
    code, out, err = cli("validate", path)
    assert code == 2, (out, err)
    message = " ".join(err.split())
    assert str(path) in message and f"field {field}:" in message and expected in message, message
    assert "got dict" not in message  # the problem inside a distribution table is named, not the table
    assert "Traceback" not in err + out


def _set(raw: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def test_every_ranged_field_refuses_a_distribution_that_draws_nan(reference_text):
    """The issue's sweep: each ranged quantity set to a truncated normal whose (low - mean)/sd overflows (it
    draws NaN, and NaN passes every range comparison) must be refused at load time, naming the field."""
    import tomllib

    from pydantic import ValidationError

    from evlaunch.config.scenario import Scenario, _range_rule, check_ranges, format_validation_error

    reference = parse_scenario(reference_text, "ref")
    fields = [path for path in quantities(reference) if _range_rule(path) is not None]
    assert len(fields) > 100
    for path in fields:
        low, high = _range_rule(path)
        raw = tomllib.loads(reference_text)
        low, high = (low, high) if low < high else (low, low + 1)
        _set(raw, path, {"dist": "normal", "mean": 1e308, "sd": 1, "low": low, "high": high})
        try:
            problems = check_ranges(Scenario.model_validate(raw))
        except ValidationError as error:  # a field that takes fixed numbers only refuses any table
            problems = format_validation_error("ref", error).removeprefix("ref: ").split("\nref: ")
        assert any(p.startswith(f"field {path}:") for p in problems), (path, problems)


def test_an_integer_too_long_to_convert_is_refused(reference_text):
    with pytest.raises(ScenarioError, match="fuzz.toml: not a usable TOML value: Exceeds the limit"):
        parse_scenario(reference_text.replace("budget_usd = 10e9", "budget_usd = 1" + "0" * 5000), "fuzz.toml")


def test_a_well_posed_truncated_normal_is_still_accepted(reference_text):
    text = reference_text.replace(BRILLIANCE_AGREEMENT,
                                  'failure = { dist = "normal", mean = 0.5, sd = 0.1, low = 0.3, high = 0.7 }'
                                  '  # assumption: Brilliance defaulted')
    scenario = parse_scenario(text, "ok.toml")
    assert "paths.Brilliance.stages.0.failure" in uncertain_parameters(scenario)


def test_sampled_draws_that_are_not_finite_are_refused(reference_text):
    """Defence in depth: a scenario object built without the load-time checks still cannot feed NaN draws
    into the model; sampling names the field and the distribution."""
    import tomllib

    from evlaunch.config.scenario import Scenario
    from evlaunch.runs.sampling import design, sample_inputs

    raw = tomllib.loads(reference_text)
    _set(raw, "product.price", {"dist": "normal", "mean": 1e308, "sd": 1, "low": 180000, "high": 300000})
    for name in ("nev_trend_per_year", "phev_trend_per_year", "phev_to_bev_ratio", "growth_per_year",
                 "charging_growth_per_year"):
        _set(raw, f"market.{name}", 0.3)  # an estimated quantity needs the prepared model's data
    scenario = Scenario.model_validate(raw)  # bypasses check_ranges on purpose
    with pytest.raises(ScenarioError, match=r"field product\.price: got a normal distribution .*non-finite"):
        sample_inputs(scenario, design(scenario, 1, ()), 0, 8)
