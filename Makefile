# restplug: `make run` serves the demo catalogue, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*)
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools

# Reinstall when any distribution's metadata changes.
$(STAMP): $(BIN)/python setup.cfg $(wildcard plugins/*/setup.cfg)
	$(BIN)/pip install --quiet -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $@

run: $(STAMP)
	@mkdir -p var
	$(BIN)/restplug demo-data --count 10000 --if-empty
	$(BIN)/restplug serve

test: $(STAMP)
	@command -v redis-server >/dev/null || ./.ci/install-redis
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/bench_list.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
