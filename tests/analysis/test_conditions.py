"""The condition grammar: parsing, evaluation, error messages, and property tests against a reference."""

import operator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlaunch.analysis.conditions import (
    MAX_DEPTH,
    AllOf,
    AnyOf,
    Comparison,
    ConditionError,
    Negation,
    evaluate,
    names_in,
    parse_condition,
)

DATA = {
    "npv": np.array([-2e9, -5e8, 0.0, 3e9, np.nan, np.inf]),
    "BAIC.npv": np.array([-2e9, 1e9, -1.5e9, 0.0, 2e9, -3e9]),
    "launch_month": np.array([10.0, 15.0, 20.0, np.inf, 14.0, 30.0]),
    "price_war.cut_2": np.array([0.0, 0.1, 0.2, 0.05, 0.08, 0.3]),
}


def test_simple_and_compound_conditions():
    assert evaluate("npv < 0", DATA).tolist() == [True, True, False, False, False, False]
    mask = evaluate("BAIC.npv < -1e9 and launch_month > 14", DATA)
    assert mask.tolist() == [False, False, True, False, False, True]
    assert evaluate("launch_month == inf", DATA).tolist() == [False, False, False, True, False, False]
    assert evaluate("price_war.cut_2 >= .1 or not (npv != 0)", DATA).tolist() == [
        False, True, True, False, False, True]


def test_precedence_not_then_and_then_or():
    a = evaluate("npv < 0 or launch_month > 14 and price_war.cut_2 > 0.1", DATA)
    b = evaluate("npv < 0 or (launch_month > 14 and price_war.cut_2 > 0.1)", DATA)
    assert a.tolist() == b.tolist()
    c = evaluate("not npv < 0 and launch_month < 16", DATA)
    d = evaluate("(not npv < 0) and launch_month < 16", DATA)
    assert c.tolist() == d.tolist()


def test_nan_draws_satisfy_only_not_equal():
    assert not evaluate("npv < 1e99", DATA)[4]
    assert not evaluate("npv == 0", DATA)[4]
    assert evaluate("npv != 0", DATA)[4]


def test_tree_shape_and_names():
    tree = parse_condition("a < 1 and b >= -2.5e3 or not c != 0")
    assert tree == AnyOf((AllOf((Comparison("a", "<", 1.0), Comparison("b", ">=", -2500.0))),
                          Negation(Comparison("c", "!=", 0.0))))
    assert names_in(tree) == {"a", "b", "c"}
    assert parse_condition(str(tree)) == tree


def test_unknown_name_lists_available_names():
    with pytest.raises(ConditionError) as err:
        evaluate("BAIC.nvp < 0", DATA)
    message = str(err.value)
    assert "'BAIC.nvp'" in message and "Did you mean BAIC.npv" in message
    for name in DATA:
        assert name in message


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("npv <", 5, "expected a number"),
        ("npv < and", 6, "expected a number"),
        ("npv 0", 4, "comparison operator"),
        ("(npv < 0", 8, "')' to close"),
        ("npv < 0)", 7, "unmatched ')'"),
        ("npv < 0 launch_month > 1", 8, "'and', 'or'"),
        ("npv = 0", 4, "unexpected character '='"),
        ("npv < 0 & x > 1", 8, "unexpected character '&'"),
        ("and < 1", 0, "output name"),
        ("inf < 1", 0, "output name"),
        ("x < nan", 4, "'nan' cannot be compared"),
        ("1 < npv", 0, "output name"),
    ],
)
def test_syntax_errors_say_where(text, position, fragment):
    with pytest.raises(ConditionError) as err:
        parse_condition(text)
    message = str(err.value)
    assert f"at position {position}" in message and fragment in message
    assert message.splitlines()[-1] == "  " + " " * position + "^"


def test_other_bad_inputs():
    for bad in ("", "   ", None, 3):
        with pytest.raises(ConditionError):
            parse_condition(bad)
    with pytest.raises(ConditionError, match="nesting"):
        parse_condition("(" * 5000 + "x < 1" + ")" * 5000)
    with pytest.raises(ConditionError, match="nesting"):
        parse_condition("not " * 5000 + "x < 1")
    parse_condition(" and ".join(["x < 1"] * 5000))  # long flat chains are fine
    with pytest.raises(ConditionError, match="shape"):
        evaluate("x < 1", {"x": np.zeros((2, 2))})
    with pytest.raises(ConditionError, match="different numbers of draws"):
        evaluate("x < 1 and y < 1", {"x": np.zeros(2), "y": np.zeros(3)})
    with pytest.raises(ConditionError, match="not numeric"):
        evaluate("x < 1", {"x": np.array(["a", "b"])})


# ----------------------------------------------------------------------------------------------
# property tests: random well-formed conditions agree with a reference evaluation

NAMES = ["a", "b.c", "d_1", "path.npv_2030"]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
       "!=": operator.ne}
N_DRAWS = 12
VALUES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 1e9, float("inf"), float("-inf")]

numbers = st.sampled_from(VALUES) | st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
comparisons = st.tuples(st.just("cmp"), st.sampled_from(NAMES), st.sampled_from(list(OPS)), numbers)
trees = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=4)),
    ),
    max_leaves=12,
)
spaces = st.sampled_from(["", " ", "  ", "\t"])


def _number_text(value, draw):
    """An exact spelling of the number (so the reference can use the value itself)."""
    if value == float("inf"):
        return draw(st.sampled_from(["inf", "+inf"]))
    if value == float("-inf"):
        return "-inf"
    return draw(st.sampled_from([repr(value), f"{value:.17e}", f"{value:+.17e}"]))


def _render(tree, draw):
    """Text for a tree, fully parenthesised where precedence could bite, with random spacing."""
    kind = tree[0]
    if kind == "cmp":
        _, name, op, value = tree
        gap = draw(spaces)
        return f"{name}{gap}{op}{draw(spaces)}{_number_text(value, draw)}"
    if kind == "not":
        return f"not ({_render(tree[1], draw)})"
    return f" {kind} ".join(f"({_render(part, draw)})" for part in tree[1])


def _reference(tree, data, i):
    kind = tree[0]
    if kind == "cmp":
        _, name, op, value = tree
        return OPS[op](float(data[name][i]), value)
    if kind == "not":
        return not _reference(tree[1], data, i)
    results = [_reference(part, data, i) for part in tree[1]]
    return all(results) if kind == "and" else any(results)


datasets = st.fixed_dictionaries(
    {name: st.lists(st.sampled_from(VALUES + [float("nan")]), min_size=N_DRAWS, max_size=N_DRAWS)
     for name in NAMES})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, data=datasets, draw=st.data())
def test_random_conditions_agree_with_reference(tree, data, draw):
    arrays = {k: np.array(v, dtype=float) for k, v in data.items()}
    text = _render(tree, draw.draw)
    mask = evaluate(text, arrays)
    expected = [_reference(tree, arrays, i) for i in range(N_DRAWS)]
    assert mask.tolist() == expected, text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab.c_1 <>=!()-+eE.5notandorinf", max_size=40))
def test_arbitrary_text_parses_or_raises_condition_error(text):
    try:
        parse_condition(text)
    except ConditionError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_arbitrary_unicode_parses_or_raises_condition_error(text):
    try:
        evaluate(text, {"a": np.zeros(3)})
    except ConditionError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, draw=st.data(),
       damage=st.sampled_from([" and", " or", " not", " (", " <", " a", " 1", " )", ") (", " ==", "<", "and and"]))
def test_damaged_conditions_always_raise_condition_error(tree, draw, damage):
    text = _render(tree, draw.draw) + damage
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_max_depth_is_usable():
    text = "(" * (MAX_DEPTH - 1) + "x < 1" + ")" * (MAX_DEPTH - 1)
    assert evaluate(text, {"x": np.array([0.0, 2.0])}).tolist() == [True, False]
