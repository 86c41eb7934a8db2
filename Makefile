# Two commands do everything on a fresh machine with Python >= 3.10:
#   make demo   - set up .venv and run `tracer run scenarios/deadlock.yaml`
#   make test   - set up .venv and run the checks: ruff, mypy, pytest
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test lint pytest bench clean

$(BIN)/tracer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $@

setup: $(BIN)/tracer

demo: setup
	@# exit 1 is tracer's answer here (the scenario deadlocks); any other failure stops make
	$(BIN)/tracer run scenarios/deadlock.yaml || test $$? -eq 1
	@command -v dot >/dev/null || echo "note: Graphviz's 'dot' is not installed (apt-get install graphviz) - graphs will be written as DOT only"

lint: setup
	$(BIN)/ruff check tracer tests bench
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: lint pytest

bench: setup
	$(BIN)/python bench/record.py
	$(BIN)/python bench/watchdog.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/explore.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
