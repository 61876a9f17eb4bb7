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
    ("elasticity with the wrong sign", 'own_price_elasticity = { dist = "triangular", low = -4.91, mode = -4.07, '
     'high = -2.63 }', "own_price_elasticity = 3.0", "market.own_price_elasticity", "within [-50, -0.1]"),
    ("wrong powertrain", 'powertrain = "BEV"              # fact', 'powertrain = "steam"  # fact',
     "product.powertrain", "'BEV' or 'PHEV'"),
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
