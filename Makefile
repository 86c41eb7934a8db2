# Two commands do everything on a fresh machine with Python >= 3.10:
#   make demo   - set up .venv and run `tracer run scenarios/deadlock.yaml`
#   make test   - set up .venv and run the checks: ruff, mypy, pytest
#   make test-all - pytest on every CPython 3.10+ that pyenv has here, each in its .venv-X.Y
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test test-all lint pytest bench bench-programs bench-peers clean

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

# The newest build of each CPython 3.10+ under $(PYENV_ROOT)/versions (X.Y.Z names only: not
# dev or free-threaded builds); versions not there are skipped, and so are the X.Y listed in
# SKIP (.ci/run skips the one `make test` just ran). Every one runs, then the summary; it fails
# if any failed, or if no CPython 3.10+ was found at all.
PYENV_ROOT ?= $(HOME)/.pyenv
SKIP ?=
test-all:
	@pys=$$(ls -d $(PYENV_ROOT)/versions/3.* 2>/dev/null | grep -E '/3\.[0-9]+\.[0-9]+$$' | \
	    sort -V | awk -F/ '{ split($$NF, v, "."); if (v[2] >= 10) last[v[1] "." v[2]] = $$0 } \
	    END { for (k in last) print last[k] }' | sort -V); \
	if [ -z "$$pys" ]; then \
	    echo "test-all: no CPython 3.10+ under $(PYENV_ROOT)/versions (set PYENV_ROOT?)"; exit 2; \
	fi; \
	failed=""; passed=""; skipped=""; \
	for py in $$pys; do \
	    ver=$$(basename $$py); venv=.venv-$${ver%.*}; \
	    case " $(SKIP) " in *" $${ver%.*} "*) skipped="$$skipped $$ver"; continue;; esac; \
	    echo "== CPython $$ver ($$venv)"; \
	    if [ ! -x $$venv/bin/pytest ] || [ pyproject.toml -nt $$venv/bin/pytest ]; then \
	        $$py/bin/python -m venv $$venv && \
	        $$venv/bin/python -m pip install --quiet -e '.[test]' \
	            --config-settings editable_mode=compat && touch $$venv/bin/pytest \
	        || { failed="$$failed $$ver(setup)"; continue; }; \
	    fi; \
	    if $$venv/bin/pytest -q -p no:cacheprovider; then passed="$$passed $$ver"; \
	    else failed="$$failed $$ver"; fi; \
	done; \
	echo "test-all: passed:$${passed:- none}; failed:$${failed:- none}; skipped (SKIP):$${skipped:- none}"; \
	[ -z "$$failed" ]

bench: setup
	$(BIN)/python bench/record.py
	$(BIN)/python bench/watchdog.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/explore.py
	$(BIN)/python bench/compute.py

# what `tracer run prog.py` costs an unchanged program (per lock op, per shared access, locals)
bench-programs: setup
	$(BIN)/python bench/programs.py

# tracer beside VizTracer, threadle and frontrun on the same work (cost per lock pair,
# schedules/s); installs the pinned peers into their own venv, .venv-peers, never into .venv
bench-peers: setup
	$(BIN)/python bench/peers.py

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache .mypy_cache .ruff_cache *.egg-info
