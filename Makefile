# Kairos: every target installs what it needs, so a fresh machine needs only `make demo` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
REDIS_PORT ?= 6379
PYTEST_ARGS ?=
export KAFKA_PORT REDIS_PORT

.PHONY: setup demo test unit lint promtool clients browser console-screenshots kafka-up kafka-down redis-up redis-down bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/kairos demo

# The real client libraries (Node, from tests/clients/package-lock.json) and kcat that the
# integration tests drive against the collector and the broker (tests/clients/install.sh).
clients:
	tests/clients/install.sh

# Headless Chromium for the console's browser tests (tests/integration/test_console_browser.py),
# Debian's package, driven by Playwright for Python (a dev dependency) with executable_path.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The console's pages as docs/console.md shows them, taken by the browser tests.
console-screenshots: setup browser
	KAIROS_CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest -q tests/integration/test_console_browser.py

# promtool checks the alert rules and dashboard queries (tests/unit/test_deploy_monitoring.py).
promtool:
	deploy/prometheus/promtool.sh

kafka-up: setup
	deploy/kafka/kafka.sh up

kafka-down:
	deploy/kafka/kafka.sh down

redis-up:
	deploy/redis/redis.sh up

redis-down:
	deploy/redis/redis.sh down

# The whole suite against the real broker and server; both are stopped even when tests fail.
test: setup promtool clients browser
	@status=0; \
	$(MAKE) --no-print-directory kafka-up redis-up || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  KAIROS_TEST_KAFKA=127.0.0.1:$(KAFKA_PORT) KAIROS_TEST_REDIS=redis://127.0.0.1:$(REDIS_PORT)/0 \
	  KAIROS_REQUIRE_SERVICES=1 $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	fi; \
	$(MAKE) --no-print-directory kafka-down redis-down; \
	exit $$status

# The standard benchmark set (docs/operations.md, "Benchmarks") against a broker and Redis on
# loopback, both stopped again whatever happens; results in load_tests/results/.
# BENCH_TIMEOUT is a last resort only: the bench bounds itself (--budget, default 540 s).
BENCH_ARGS ?=
BENCH_TIMEOUT ?= 900
bench: setup
	@status=0; \
	$(MAKE) --no-print-directory kafka-up redis-up || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  timeout --signal=INT --kill-after=30 $(BENCH_TIMEOUT) \
	    $(PY) -m load_tests.bench --bootstrap 127.0.0.1:$(KAFKA_PORT) $(BENCH_ARGS) || status=$$?; \
	fi; \
	$(MAKE) --no-print-directory kafka-down redis-down; \
	exit $$status

# Pure-core tests only: no broker, no server.
unit: setup promtool
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check engine connectors rules tests load_tests
	$(VENV)/bin/mypy

clean:
	rm -rf .kairos .pytest_cache .mypy_cache .ruff_cache
