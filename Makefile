# restplug: `make run` serves the demo catalogue, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*)
STAMP := $(VENV)/.installed

.PHONY: run test chaos fuzz lint format bench bench-scale bench-parts clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools

# Reinstall when any distribution's metadata changes.
$(STAMP): $(BIN)/python setup.cfg $(wildcard plugins/*/setup.cfg)
	$(BIN)/pip install --quiet -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $@

# A dev secret for HS256 tokens, generated once, unless the deployer configured auth already.
AUTH_SECRET := var/auth-jwt-secret
run: $(STAMP)
	@mkdir -p var
	@test -s $(AUTH_SECRET) || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > $(AUTH_SECRET)
	@if [ -z "$$RESTPLUG_AUTH_JWT_SECRET$$RESTPLUG_AUTH_JWKS_URL$$RESTPLUG_AUTH_INTROSPECTION_URL" ] \
	    && ! grep -qsE '^RESTPLUG_AUTH_(JWT_SECRET|JWKS_URL|INTROSPECTION_URL)=.' .env; then \
	  export RESTPLUG_AUTH_JWT_SECRET="$$(cat $(AUTH_SECRET))"; \
	fi; \
	$(BIN)/restplug demo-data --count 10000 --if-empty && \
	if token=$$($(BIN)/restplug token --scopes 'backend/*' --ttl 86400 2>/dev/null); then \
	  echo "Write with a backend/* dev token (valid 24 h):"; \
	  echo "  curl -X POST http://$${RESTPLUG_HOST:-127.0.0.1}:$${RESTPLUG_PORT:-8080}/api/v1/apps -H 'Authorization: Bearer $$token' -H 'Content-Type: application/json' -d '{\"id\": 999999, \"name\": \"My game\", \"type\": \"game\"}'"; \
	  echo "Admin panel: http://$${RESTPLUG_HOST:-127.0.0.1}:$${RESTPLUG_PORT:-8080}/admin/ (sign in with this token):"; \
	  echo "  $$token"; \
	fi; \
	exec $(BIN)/restplug serve

# Programs the tests start: redis-server, wrk, and Chromium with its driver for the admin's
# browser tests.
test: $(STAMP)
	@./.ci/install-debian redis-server wrk chromium chromedriver
	$(BIN)/pytest -q

# The fault suite at full length; `make test` runs its short version.
chaos: $(STAMP)
	RESTPLUG_CHAOS=full $(BIN)/pytest -q tests/chaos

# schemathesis at length, every check; `make test` runs a short round that fails on any 5xx.
fuzz: $(STAMP)
	RESTPLUG_FUZZ=full $(BIN)/pytest -q -s tests/e2e/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The harness (bench/bench.py): restplug under wrk next to the limit and the store limit.
# N apps (make bench N=20000); results in bench/results/.
N ?= 100000
bench: $(STAMP)
	$(BIN)/python bench/bench.py --count $(N)

# List, search and cursor pages at 10,000 / 100,000 / 1,000,000 apps: how their cost grows.
bench-scale: $(STAMP)
	$(BIN)/python bench/bench.py scale --counts 10000,100000,1000000

# The focused measurements the harness does not make: query plans, the search index alone,
# ingest stalls, authentication and rate limiting costs.
bench-parts: $(STAMP)
	$(BIN)/python bench/bench_list.py
	$(BIN)/python bench/bench_methods.py
	$(BIN)/python bench/bench_search_index.py
	$(BIN)/python bench/bench_search_es.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_ingest_stall.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_auth.py
	$(BIN)/python bench/bench_ratelimit.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
