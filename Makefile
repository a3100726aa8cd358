# Every target installs what it needs into .venv first (Python 3.11 and make are enough).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The lowest versions pyproject.toml allows for every direct dependency, in a venv of their own.
LOWEST_VENV := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed

.PHONY: demo test test-fast test-lowest bench screenshots lint format clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m segment_assets.demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=10

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

# A lower bound in pyproject.toml must be a version the code works with: install each direct
# dependency at the lowest version its bound allows (uv's lowest-direct resolution), run the
# fast tests on them, and the linter at its lowest version.
$(LOWEST_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet 'uv>=0.5'
	$(LOWEST_VENV)/bin/uv pip install --quiet --python $(LOWEST_VENV)/bin/python \
		--resolution lowest-direct -e '.[dev]'
	touch $(LOWEST_STAMP)

test-lowest: $(LOWEST_STAMP)
	$(LOWEST_VENV)/bin/uv pip list --python $(LOWEST_VENV)/bin/python | grep -Ei \
		'^(dagster[a-z-]*|duckdb|filelock|numpy|pandas|playwright|psycopg2-binary|pydantic|pytest[a-z-]*|pyyaml|requests|tabulate|urllib3) '
	$(LOWEST_VENV)/bin/ruff check --no-cache .
	$(LOWEST_VENV)/bin/ruff format --no-cache --check .
	$(LOWEST_VENV)/bin/python -m pytest -n 2 -m "not slow" -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/detection_bench.py
	$(PY) bench/snapshot_bench.py

# The README's screenshots of Dagster's UI, taken again by Debian's Chromium
# (apt-get install chromium) from scripts/screenshots/scenario.yaml into docs/images/.
screenshots: $(STAMP)
	$(PY) -m scripts.screenshots

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .ruff_cache data .dagster_home
