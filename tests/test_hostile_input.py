"""Hostile and malformed scenario files end in exit 0 or exit 2 with a message: never a traceback or a hang."""

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlaunch.config.scenario import parse_scenario
from evlaunch.errors import EvlaunchError
from evlaunch.simulation.simulate import prepare

VALUE = re.compile(r"(?m)^(\s*[A-Za-z_0-9]+\s*=\s*)([^#\n]+)")

replacement_values = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(x).replace("inf", "inf").replace("nan", "nan")),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e308", "true", "[]", "{}", '"x"', "1979-01-01",
                     '{ dist = "normal", mean = 0, sd = -1 }', '{ dist = "discrete", values = [] }',
                     '{ dist = "beta", alpha = 0, beta = 1 }', '{ dist = "uniform", low = 1, high = 1 }',
                     '"2024-00"', '"9999-12"', '""', '"' + "é" * 50 + '"', "[1, 2, 3]"]),
    st.text(max_size=30).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
)


def check(text: str, reference_path) -> None:
    started = time.perf_counter()
    try:
        scenario = parse_scenario(text, "fuzz.toml")
        prepare(scenario, reference_path.parent)
    except EvlaunchError as error:
        assert str(error).strip(), "an error must say what is wrong"
        assert "Traceback" not in str(error)
    assert time.perf_counter() - started < 5.0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_value_replacements(reference_text, reference_path, data):
    matches = list(VALUE.finditer(reference_text))
    chosen = data.draw(st.lists(st.sampled_from(matches), min_size=1, max_size=4))
    text = reference_text
    for match in sorted(chosen, key=lambda m: m.start(), reverse=True):
        new_value = data.draw(replacement_values)
        text = text[:match.start(2)] + new_value + text[match.end(2):]
    check(text, reference_path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=2000))
def test_random_text(reference_path, text):
    check(text, reference_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=20000), junk=st.text(max_size=50))
def test_truncated_and_spliced_files(reference_text, reference_path, cut, junk):
    check(reference_text[: cut % len(reference_text)] + junk, reference_path)


@pytest.mark.parametrize("payload", [
    "x = 1\n" * 2_000_000,                                  # 12 MB
    "a = " + "[" * 5000 + "]" * 5000,                      # deep nesting
    "name = '" + "\U0001F697" * 10000 + "'",                # unicode
    "\x00\x01\x02binary",
])
def test_huge_deep_and_binary_files_are_refused_with_a_message(tmp_path, cli, payload):
    path = tmp_path / "hostile.toml"
    path.write_text(payload, encoding="utf-8", errors="surrogatepass")
    started = time.perf_counter()
    code, out, err = cli("validate", path)
    assert code == 2 and "error" in err and "Traceback" not in err + out
    assert time.perf_counter() - started < 10


def test_non_utf8_file(tmp_path, cli):
    path = tmp_path / "latin1.toml"
    path.write_bytes("name = 'caf\xe9'".encode("latin-1"))
    code, _, err = cli("validate", path)
    assert code == 2 and "not UTF-8" in err


@pytest.mark.parametrize("args,fragment", [
    (["run", "{ref}", "--draws", "-5"], "--draws"),
    (["run", "{ref}", "--draws", "20000000"], "between 1 and"),
    (["run", "{ref}", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "either --workers"),
    (["run", "{ref}", "--seed", "-1"], "--seed"),
    (["data", "nosuchtable"], "unknown table"),
    (["data", "firms", "--where", "nocolumn=x"], "expected COLUMN=TEXT"),
    (["data", "--as-of", "yesterday"], "YYYY-MM-DD"),
])
def test_bad_command_line_usage_exits_2(cli, reference_path, tmp_path, args, fragment):
    args = [a.replace("{ref}", str(reference_path)) for a in args] + (
        ["--out", str(tmp_path / "o"), "--no-store"] if args[0] == "run" else [])
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert fragment in " ".join((out + err).split())
    assert "Traceback" not in out + err


# -- issue 14: user tables named by a scenario --------------------------------------------------------------

def _scenario_with_tables(reference_text, folder, tables: dict[str, str]) -> Path:
    lines = "".join(f'{name} = "{path}"\n' for name, path in tables.items())
    path = folder / "mine.toml"
    path.write_text(reference_text.replace("[market]\n", f"[data.tables]\n{lines}\n[market]\n", 1), encoding="utf-8")
    return path


def test_run_away_from_the_scenario_folder_reads_its_tables_everywhere(reference_text, tmp_path, cli, monkeypatch):
    """Relative table paths are joined to the scenario's folder by every reader, the report's partner facts
    (firms) and reference-class chart (new_brand_ramps) included: the run writes report.html, and the chart
    shows the user's ramps, not the bundled ones."""
    from evlaunch.data.loader import bundled_path

    folder, elsewhere = tmp_path / "scenario", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "my_firms.csv").write_bytes(bundled_path("firms").read_bytes())
    ramps = bundled_path("new_brand_ramps").read_text(encoding="utf-8")
    assert ramps.count("\nNIO,") > 3
    (folder / "my_ramps.csv").write_text(ramps.replace("\nNIO,", "\nZeta Motors,"), encoding="utf-8")
    scenario = _scenario_with_tables(reference_text, folder, {"firms": "my_firms.csv",
                                                              "new_brand_ramps": "my_ramps.csv"})
    monkeypatch.chdir(elsewhere)
    code, out, err = cli("run", Path("..") / "scenario" / scenario.name, "--draws", "8", "--out", "out", "--no-store")
    assert code == 0, (out, err)
    report = (elsewhere / "out" / "report.html").read_text(encoding="utf-8")
    assert "Zeta Motors" in report and "Brilliance" in report


def test_a_bad_user_table_is_exit_2_naming_the_file(reference_text, tmp_path, cli):
    (tmp_path / "firms_header_only.csv").write_text(
        "firm,year,total_sales,nev_sales,notable_plants,capacity_utilisation,production_licence,source,note\n")
    scenario = _scenario_with_tables(reference_text, tmp_path, {"firms": "firms_header_only.csv"})
    code, out, err = cli("validate", scenario)
    message = " ".join(err.split())
    assert code == 2 and "firms_header_only.csv has a header but no rows" in message and str(scenario) in message
    assert "Traceback" not in out + err


@pytest.mark.parametrize("table,keep,expected", [
    ("china_cars_monthly_total", lambda line: not line.startswith("2023-"), "for months 2023-01, 2023-02"),
])
def test_user_tables_too_thin_for_the_model_are_refused_naming_the_table(reference_text, tmp_path, cli, table, keep,
                                                                          expected):
    """Found by the fuzzer: a user's table that passes its schema but lacks what the model needs (two brands'
    ramps, every base-period month) is refused naming the table and its file, not with a bare message."""
    from evlaunch.data.loader import bundled_path

    lines = bundled_path(table).read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "thin.csv").write_text("".join(line for line in lines if keep(line)), encoding="utf-8")
    scenario = _scenario_with_tables(reference_text, tmp_path, {table: "thin.csv"})
    code, out, err = cli("validate", scenario)
    message = " ".join(err.split())
    assert code == 2, (out, err)
    assert f"table '{table}'" in message and "thin.csv" in message and expected in message, message
