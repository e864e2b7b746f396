# Two entry points for a fresh machine (see README):
#   make demo   install into .venv and run `shopsync demo`
#   make test   install into .venv and run ruff, mypy and the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The console's browser tests drive Debian's Chromium (never a downloaded build).
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
		(apt-get install -y chromium || sudo apt-get install -y chromium || \
		 (apt-get update && apt-get install -y chromium)) || \
		echo "chromium not installed: the console's browser tests will be skipped"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shopsync demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
