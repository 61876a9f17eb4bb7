# Two entry points: `make demo` runs the reference scenario and writes its report;
# `make test` runs the whole test suite. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DRAWS ?= 2000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test fuzz bench backtest lint chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/evlaunch run scenarios/xiaomi-2023.toml --draws $(DRAWS) --out runs/xiaomi-2023
	@echo "Report: $(CURDIR)/runs/xiaomi-2023/report.html"

# Debian's chromium drives the browser tests (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

test: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The input fuzzer at length (tests/fuzz): FUZZ_CASES mutated scenarios and user tables, each through
# load -> prepare -> a small simulate; the count of each outcome class (and any crash, hang or non-finite
# output, with its input) goes to runs/fuzz-outcomes.json; it fails if there was any.
FUZZ_CASES ?= 5000
fuzz: $(VENV)/.installed-dev
	mkdir -p runs
	EVLAUNCH_FUZZ_CASES=$(FUZZ_CASES) EVLAUNCH_FUZZ_KEEP_GOING=1 EVLAUNCH_FUZZ_REPORT=runs/fuzz-outcomes.json \
		$(BIN)/python -m pytest tests/fuzz -p no:cacheprovider -q

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_equilibrium.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_cost_growth.py

# Every backtest the project has: the 2021 scenario against 2021-2023; the leave-one-brand-out ramp check
# (its last line: `ramps: inside=<k>/<n> median_abs_error=<x> baseline_median_abs_error=<y>`); the rolling-origin
# market backtest (its last line: `market: inside=<k>/<n> model_mae=<x> naive_mae=<y> industry_mae=<z>`).
backtest: $(VENV)/.installed
	$(BIN)/evlaunch backtest scenarios/xiaomi-2021.toml --actuals backtests/china-2021-2023.csv
	COLUMNS=160 $(BIN)/evlaunch backtest --ramps | tee backtests/ramps.txt
	$(BIN)/evlaunch backtest --all --draws 1000

# Core packages mypy checks (the others are followed silently until they pass and join this list):
# market and supply wait on Optional arrays (rc_logit's ProductSet.available, ConsumerTypes) and a few
# mismatched annotations.
MYPY_PACKAGES := evlaunch.errors evlaunch.atomic evlaunch._version evlaunch.data evlaunch.config \
	evlaunch.analysis evlaunch.entry evlaunch.finance evlaunch.api evlaunch.report

# ruff (style, complexity limits), mypy (types of the core packages), import-linter (layers, no cycles)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy $(addprefix -p ,$(MYPY_PACKAGES))
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs build src/*.egg-info
