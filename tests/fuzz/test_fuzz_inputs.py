"""A fuzzer for everything a user feeds evlaunch: the scenario file and the tables it names.

Hypothesis mutates the reference scenario (scenarios/xiaomi-2023.toml) — values replaced by other types,
NaN/inf, huge, negative and tiny numbers, hostile distribution tables, impossible or non-ASCII months,
unicode text, deleted/duplicated/unknown lines, truncation — and copies of the tables a scenario may
replace (malformed CSV, bad cells, missing columns, repeated or missing rows). Each case runs in-process
through load -> prepare -> a small simulate. The property: the draws' outputs are finite (NaN only where
it means "never launched"), or the case is refused with a project error (EvlaunchError) whose message
names a field or a file — never another exception, never a hang (a time limit per case).

The base is the reference scenario made cheap to simulate (12 months, 2 consumer types per region);
mutations keep its structure otherwise. The normal test run draws a few hundred cases from a fixed seed
(the suite's deterministic Hypothesis profile); `make fuzz` draws EVLAUNCH_FUZZ_CASES (default there 5,000)
and, with EVLAUNCH_FUZZ_REPORT=FILE, writes the count of each outcome class as JSON.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlaunch.config.distributions import DISTRIBUTION_NAMES
from evlaunch.config.scenario import ALLOWED_RANGES, parse_scenario
from evlaunch.data.loader import bundled_path
from evlaunch.errors import EvlaunchError
from evlaunch.runs.sampling import design, sample_inputs
from evlaunch.simulation.simulate import prepare, simulate

CASES = int(os.environ.get("EVLAUNCH_FUZZ_CASES", "160"))
CASE_SECONDS = float(os.environ.get("EVLAUNCH_FUZZ_CASE_SECONDS", "60"))
# make fuzz: record a crash or hang and go on (the census), failing at the end instead of at the first one
KEEP_GOING = os.environ.get("EVLAUNCH_FUZZ_KEEP_GOING") == "1"
DRAWS = 8
SEED = 14
REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml"
OUTCOMES: collections.Counter[str] = collections.Counter()
FAILURES: list[dict[str, str]] = []  # with KEEP_GOING: what crashed or hung, and on which input
# outputs that may be NaN (or +inf) by meaning: a path that never launches has no launch month and no diversion
# documented as NaN (or inf) when there is nothing to measure: no launch, no deliveries in the year (margin, price),
# a rival that sold nothing in its first year, an expansion never ordered
MAY_BE_NAN = re.compile(r"\.launch_month_index$|\.diversion\.|\.expansion_ordered_month$|\.gross_margin\.|"
                        r"\.entrant_price\.|\.rival_diversion\.")


def _cheap(text: str) -> str:
    # a 12-month horizon ends 2024-10: the rival scheduled for 2026-06 (Apple) moves inside it, as launches must
    for old, new in (("horizon_months = 62", "horizon_months = 12"), ("types_per_region = 16", "types_per_region = 2"),
                     ('month = "2026-06"', 'month = "2024-06"')):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


BASE = _cheap(REFERENCE.read_text(encoding="utf-8"))
VALUE = re.compile(r"(?m)^(\s*[A-Za-z_0-9]+\s*=\s*)([^#\n]+)")
PARAMETER = re.compile(r"\b((?:low|mode|high|mean|sd|median|sigma|alpha|beta)\s*=\s*)(-?[0-9][0-9.eE+\-_]*)")
MONTH = re.compile(r'"[0-9]{4}-[0-9]{2}"')
CODE_LINE = re.compile(r"(?m)^[^#\n].*$")

# -- scenario values --------------------------------------------------------------------------------------


def _toml_float(value: float) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan" if math.isnan(value) else repr(value))


hostile_numbers = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e-308", "5e-324", "0", "-0.0", "-1", "-5",
                     "1e12", "1e300", "0.5", "1", "99999999999999999999", "0x1000", "0o17", "0b11", "1_000",
                     "1" + "0" * 5000]),
    st.floats(allow_nan=True, allow_infinity=True).map(_toml_float),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
)
hostile_months = st.sampled_from(['"2023-13"', '"2023-00"', '"0000-01"', '"9999-12"', '"1990-01"', '"2100-12"',
                                  '"２０２３-11"', '"٢٠٢٤-06"', '"2023-1"', '"2023-11 "', '"2024-06"', '"2023-11"',
                                  '"2010-01"', '"2029-01"', '"2025-06"', '""'])
hostile_scalars = st.one_of(
    hostile_numbers, hostile_months,
    st.sampled_from(["true", "false", '"0.5"', '"x"', '""', "[]", "[1, 2]", "{}", '["BEV"]', "1979-05-27",
                     "2023-10-31", "1979-05-27T07:32:00", '"' + "é" * 200 + '"', '"\\u0000"', '"Tesla Model 3"',
                     '"lineup_2020"', '"fixed"', '"bertrand"']),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20).map(
        lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
)


@st.composite
def distribution_tables(draw) -> str:
    dist = draw(st.sampled_from([*DISTRIBUTION_NAMES, "gamma", ""]))
    names = {"normal": ["mean", "sd", "low", "high"], "lognormal": ["median", "sigma"],
             "triangular": ["low", "mode", "high"], "uniform": ["low", "high"], "beta": ["alpha", "beta", "low", "high"],
             "discrete": ["values", "weights"]}.get(dist, ["low", "high"])
    keep = draw(st.lists(st.sampled_from(names), min_size=0, max_size=len(names), unique=True)) or names
    parts = [f'dist = "{dist}"']
    for name in keep:
        if name in ("values", "weights"):
            items = draw(st.lists(hostile_numbers, min_size=0, max_size=4))
            parts.append(f"{name} = [{', '.join(items)}]")
        else:
            parts.append(f"{name} = {draw(st.one_of(hostile_numbers, hostile_scalars))}")
    return "{ " + ", ".join(parts) + " }"


def _replace_value(text: str, data) -> str:
    matches = list(VALUE.finditer(text))
    if not matches:
        return text
    match = data.draw(st.sampled_from(matches))
    value = data.draw(st.one_of(hostile_scalars, distribution_tables()))
    return text[:match.start(2)] + value + text[match.end(2):]


def _replace_parameter(text: str, data) -> str:
    matches = list(PARAMETER.finditer(text))
    if not matches:
        return text
    match = data.draw(st.sampled_from(matches))
    return text[:match.start(2)] + data.draw(st.one_of(hostile_numbers, hostile_scalars)) + text[match.end(2):]


def _boundary(text: str, data) -> str:
    """A ranged field at the edge of what it allows: a fixed value at or near a bound, or a distribution
    spanning the whole range (the accepted region's edges are where a model breaks)."""
    matches = [m for m in VALUE.finditer(text) if m.group(1).split("=")[0].strip() in ALLOWED_RANGES]
    if not matches:
        return text
    match = data.draw(st.sampled_from(matches))
    low, high = ALLOWED_RANGES[match.group(1).split("=")[0].strip()]
    inner = st.floats(min_value=low, max_value=high, allow_nan=False)
    value = data.draw(st.one_of(
        st.sampled_from([low, high, (low + high) / 2, low + (high - low) * 1e-9, high - (high - low) * 1e-9]).map(repr),
        inner.map(repr),
        st.just(f'{{ dist = "uniform", low = {low!r}, high = {high!r} }}'),
        st.just(f'{{ dist = "triangular", low = {low!r}, mode = {low!r}, high = {high!r} }}'),
        st.just(f'{{ dist = "triangular", low = {low!r}, mode = {high!r}, high = {high!r} }}'),
        st.just(f'{{ dist = "beta", alpha = 0.05, beta = 0.05, low = {low!r}, high = {high!r} }}'),
        st.just(f'{{ dist = "normal", mean = {low!r}, sd = {(high - low) * 10!r}, low = {low!r}, high = {high!r} }}'),
        st.just(f'{{ dist = "discrete", values = [{low!r}, {high!r}], weights = [1e-300, 1] }}'),
    ))
    return text[:match.start(2)] + value + text[match.end(2):]


def _scale(text: str, data) -> str:
    """A number in the file (a fixed value or a distribution's parameter) scaled up or down."""
    matches = [m for m in PARAMETER.finditer(text)] + [m for m in VALUE.finditer(text)
                                                      if re.fullmatch(r"-?[0-9][0-9.eE+\-_]*\s*", m.group(2))]
    if not matches:
        return text
    match = data.draw(st.sampled_from(matches))
    try:
        number = float(match.group(2).replace("_", ""))
    except ValueError:
        return text
    factor = data.draw(st.sampled_from([0.0, 1e-6, 0.01, 0.5, 0.9, 1.1, 2.0, 10.0, 1e3, -1.0]))
    scaled = number * factor
    literal = repr(int(scaled)) if "." not in match.group(2) and "e" not in match.group(2).lower() and abs(
        scaled) < 1e15 and scaled == int(scaled) else repr(scaled)
    return text[:match.start(2)] + literal + text[match.end(2):]


def _replace_month(text: str, data) -> str:
    matches = list(MONTH.finditer(text))
    if not matches:
        return text
    match = data.draw(st.sampled_from(matches))
    return text[:match.start()] + data.draw(hostile_months) + text[match.end():]


def _delete_line(text: str, data) -> str:
    if not CODE_LINE.search(text):
        return text
    match = data.draw(st.sampled_from(list(CODE_LINE.finditer(text))))
    return text[:match.start()] + text[match.end():]


def _duplicate_line(text: str, data) -> str:
    if not CODE_LINE.search(text):
        return text
    match = data.draw(st.sampled_from(list(CODE_LINE.finditer(text))))
    return text[:match.end()] + "\n" + match.group(0) + text[match.end():]


def _unknown_key(text: str, data) -> str:
    headers = [m.end() for m in re.finditer(r"(?m)^\[[^\n]*\]$", text)]
    if not headers:
        return text
    at = data.draw(st.sampled_from(headers))
    key = data.draw(st.sampled_from(["colour", "prise", "months", "dist", "note", "tables", "extra"]))
    return text[:at] + f"\n{key} = {data.draw(hostile_scalars)}" + text[at:]


def _truncate(text: str, data) -> str:
    return text[:data.draw(st.integers(min_value=0, max_value=len(text)))] + data.draw(st.text(max_size=10))


SCENARIO_EDITS = {"value": _replace_value, "parameter": _replace_parameter, "boundary": _boundary, "scale": _scale,
                  "month": _replace_month, "delete line": _delete_line, "duplicate line": _duplicate_line,
                  "unknown key": _unknown_key, "truncate": _truncate}
SCENARIO_WEIGHTS = (["value"] * 4 + ["parameter"] * 3 + ["boundary"] * 5 + ["scale"] * 4 + ["month"] * 2
                    + ["delete line", "duplicate line", "unknown key", "truncate"])

# -- user tables ------------------------------------------------------------------------------------------

TABLES = ["china_cars_monthly_total", "china_bev_monthly_by_model", "market_annual", "charging_points",
          "battery_pack_cost", "policy_schedule", "firms", "new_brand_ramps", "lineup_2023"]
hostile_cells = st.one_of(
    st.sampled_from(["", "abc", "inf", "-inf", "nan", "NaN", "1e300", "-1e300", "-5", "0", "0.5", "1,000",
                     " 7 ", "2023-13", "2023-00", "0000-01", "9999-12", "２０２３-01", "2018-02-30", "2023-13-45",
                     "2023-08", "2020", "1989", "2101", "yes", "BEV", "NEV", "purchase subsidy", "Tesla Model 3",
                     "é" * 30, "=1+1", "\t", "None"]),
    hostile_numbers,
    st.text(max_size=12),
)


def _table_text(name: str) -> str:
    return bundled_path(name).read_text(encoding="utf-8")


@st.composite
def table_variants(draw) -> tuple[str, str]:
    """(table name, the text of a mutated copy of it)."""
    name = draw(st.sampled_from(TABLES))
    frame = pd.read_csv(bundled_path(name), dtype=str, keep_default_na=False)
    edit = draw(st.sampled_from(["cell", "cell", "cell", "cells", "drop column", "header only", "repeat row",
                                 "drop rows", "truncate", "garbage line", "rename column"]))
    if edit in ("cell", "cells"):
        for _ in range(1 if edit == "cell" else draw(st.integers(2, 6))):
            row = draw(st.integers(0, len(frame) - 1))
            column = draw(st.sampled_from([c for c in frame.columns if c not in ("source", "note")]))
            frame.loc[row, column] = draw(hostile_cells)
    elif edit == "drop column":
        frame = frame.drop(columns=[draw(st.sampled_from(list(frame.columns)))])
    elif edit == "header only":
        frame = frame.iloc[:0]
    elif edit == "repeat row":
        frame = pd.concat([frame, frame.iloc[[draw(st.integers(0, len(frame) - 1))]]], ignore_index=True)
    elif edit == "drop rows":
        keep = draw(st.lists(st.integers(0, len(frame) - 1), min_size=0, max_size=len(frame), unique=True))
        frame = frame.iloc[sorted(keep)]
    elif edit == "rename column":
        old = draw(st.sampled_from(list(frame.columns)))
        frame = frame.rename(columns={old: draw(st.sampled_from(["x", old.upper(), old + " ", "source"]))})
    text = frame.to_csv(index=False)
    if edit == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif edit == "garbage line":
        lines = text.split("\n")
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(['"unclosed,quote', "\x00\x01", ",,,,,,,,,,,,,,,,,,,,,,,,", "a,b",
                                               "€", "﻿month"])))
        text = "\n".join(lines)
    return name, text


# -- the property -----------------------------------------------------------------------------------------


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def _field_or_file(message: str) -> str | None:
    """What a refusal names: the field, else the table, else None (a message that names nothing)."""
    field = re.search(r"field ([A-Za-z_][A-Za-z0-9_.\-]*)", message)
    if field:
        return "field " + re.sub(r"\.[0-9]+\b", ".N", field.group(1).rstrip("."))
    table = re.search(r"table '([a-z_0-9]+)'", message)
    if table:
        return f"table {table.group(1)}"
    dotted = re.search(r"\b((?:market|product|paths|finance|competition|supply_shocks|regions|dynamics|policy|"
                       r"recommendation|data)\.[A-Za-z_][A-Za-z0-9_.\-]*)", message)
    if dotted:
        return "field " + re.sub(r"\.[0-9]+\b", ".N", dotted.group(1).rstrip("."))
    if re.search(r"\.(toml|csv)\b", message):
        return "file"
    return None


def exercise(text: str, folder: Path) -> str:
    """Run one case (load, prepare, simulate DRAWS draws); return its outcome class or fail the test."""
    source = str(folder / "fuzz.toml")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    started = time.perf_counter()
    try:
        scenario = parse_scenario(text, source)
        model = prepare(scenario, folder, source)
        outputs = simulate(model, sample_inputs(model.scenario, design(model.scenario, SEED, model.event_names), 0,
                                                DRAWS))
    except EvlaunchError as error:
        message = str(error)
        named = _field_or_file(message)
        outcome = f"refused: {named}" if named else "refused naming nothing"
        OUTCOMES[outcome] += 1
        assert named is not None, f"a refusal must name a field or a file: {message!r}"
        assert "Traceback" not in message
        return outcome
    except CaseTimeout:
        OUTCOMES["hang"] += 1
        if KEEP_GOING:
            FAILURES.append({"class": "hang", "error": f"> {CASE_SECONDS:g} s", "scenario": text})
            return "hang"
        pytest.fail(f"case took more than {CASE_SECONDS:g} s")
    except Exception as error:
        OUTCOMES["crash"] += 1
        if KEEP_GOING:
            FAILURES.append({"class": "crash", "error": f"{type(error).__name__}: {error}"[:2000], "scenario": text})
            return "crash"
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    arrays = {key: np.asarray(values, dtype=float) for key, values in outputs.items()}
    bad = [key for key, values in arrays.items()
           if not (np.isfinite(values) | ((np.isnan(values) | (values == np.inf)) if MAY_BE_NAN.search(key)
                                          else False)).all()]
    if bad:
        OUTCOMES["accepted with non-finite outputs"] += 1
        if KEEP_GOING:
            FAILURES.append({"class": "non-finite", "error": ", ".join(bad[:5]), "scenario": text})
            return "non-finite"
    assert not bad, f"accepted, but outputs are not finite: {bad[:5]}"
    OUTCOMES["accepted"] += 1
    assert elapsed < CASE_SECONDS
    return "accepted"


@pytest.fixture(scope="module", autouse=True)
def outcome_report():
    """With EVLAUNCH_FUZZ_REPORT=FILE, write how many cases ended in each class (appending per module run)."""
    yield
    target = os.environ.get("EVLAUNCH_FUZZ_REPORT")
    if target:
        report = {"outcomes": dict(OUTCOMES.most_common()), "failures": FAILURES[:50]}
        Path(target).write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    assert not FAILURES, f"{len(FAILURES)} cases crashed, hung or gave non-finite outputs (see EVLAUNCH_FUZZ_REPORT)"


FUZZ_SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_the_base_scenario_runs_with_finite_outputs():
    with tempfile.TemporaryDirectory() as folder:
        assert exercise(BASE, Path(folder)) == "accepted"


@settings(max_examples=max(CASES * 3 // 4, 1), **FUZZ_SETTINGS)
@given(data=st.data())
def test_mutated_scenarios_run_or_are_refused_naming_a_field(data):
    text = BASE
    for _ in range(data.draw(st.integers(1, 3))):
        edit = data.draw(st.sampled_from(SCENARIO_WEIGHTS))
        text = SCENARIO_EDITS[edit](text, data)
    with tempfile.TemporaryDirectory() as folder:
        exercise(text, Path(folder))


@settings(max_examples=max(CASES // 4, 1), **FUZZ_SETTINGS)
@given(variant=table_variants(), tweak=st.booleans(), data=st.data())
def test_mutated_user_tables_run_or_are_refused_naming_the_file(variant, tweak, data):
    name, table = variant
    file_name = f"my {name}.csv"
    if name.startswith("lineup"):
        text = BASE.replace('lineup = "lineup_2023"', f'lineup = "{file_name}"', 1)
    else:
        text = BASE.replace("[market]\n", f'[data.tables]\n{name} = "{file_name}"\n\n[market]\n', 1)
    if tweak:  # a scenario edit on top of the table's
        text = _replace_value(text, data)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / file_name).write_bytes(table.encode("utf-8", errors="surrogatepass"))
        exercise(text, Path(folder))
