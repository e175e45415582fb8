# tracescore: `make run` to try it, `make test` to check it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ADDR ?= 127.0.0.1:8000
export DEBUG ?= true

.PHONY: run test install install-test migrate lint format bench-ingest bench-list bench-scoring bench-judges clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The official OpenTelemetry JS exporter for the Node ingest tests, from its lock file.
# Without npm the tests skip (and fail under CI, which needs them).
OTEL_JS := tests/node/otel-js
$(OTEL_JS)/node_modules/.installed: $(OTEL_JS)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(OTEL_JS) --no-audit --no-fund && touch $@; \
	elif [ -n "$$CI" ]; then echo "npm is needed for the Node exporter tests" >&2; exit 1; \
	else echo "npm not found: the Node exporter tests will be skipped"; fi

install-test: $(VENV)/.installed-test $(OTEL_JS)/node_modules/.installed

migrate: install
	$(PY) manage.py migrate --no-input -v 0

run: migrate
	$(PY) manage.py bootstrap --url http://$(ADDR)
	$(PY) manage.py start $(ADDR)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install-test lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check
	$(PY) -m pytest

# A Mastra agent and Mastra's own exporters for the Mastra ingest tests, from their lock
# file; Node 22 comes as an npm package. Without npm the tests skip (CI fails them).
MASTRA_JS := tests/node/mastra
$(MASTRA_JS)/node_modules/.installed: $(MASTRA_JS)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(MASTRA_JS) --no-audit --no-fund && touch $@; \
	elif [ -n "$$CI" ]; then echo "npm is needed for the Mastra tests" >&2; exit 1; \
	else echo "npm not found: the Mastra tests will be skipped"; fi

install-test: $(MASTRA_JS)/node_modules/.installed

# Benchmarks (not tests): scratch PostgreSQL databases on the local server; see docs/performance.md.
bench-ingest: install-test
	$(PY) bench/ingest.py

bench-list: install-test
	$(PY) bench/trace_list.py

bench-scoring: install-test
	$(PY) bench/scoring.py

# LLM judges against the loopback judge with 0.5 s answers; BENCH_ARGS=--storm for 429s.
bench-judges: install-test
	$(PY) bench/judges.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) test-artifacts db.sqlite3* test-db.sqlite3*
