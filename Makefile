# CNOP: `make run` sets up everything and serves the app; `make test` sets up and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLS := .tools
BUN := $(TOOLS)/node_modules/bun/bin/bun.exe
BUN_VERSION := 1.4.4
CNOP_PORT ?= 3000

export REFLEX_DIR := $(CURDIR)/.tools/reflex
export BUN_INSTALL_CACHE_DIR := $(CURDIR)/.tools/bun-cache
export REFLEX_BUN_PATH := $(CURDIR)/$(BUN)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test setup setup-test screenshots lint format bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(BUN):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION)
	test -x $(BUN) || cp $(TOOLS)/node_modules/@oven/bun-linux-x64/bin/bun $(BUN)
	$(BUN) --version

setup: $(VENV)/.runtime $(BUN)
	$(PY) -m cnop_app.manage migrate
	$(PY) -m cnop_app.manage seed

run: setup
	CNOP_PORT=$(CNOP_PORT) $(VENV)/bin/reflex run --env prod --single-port --frontend-port $(CNOP_PORT) --backend-port $(CNOP_PORT)

# Test-only system tools: Debian's Chromium for the browser tests (Playwright drives it; no download).
/usr/bin/chromium:
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

/usr/lib/postgresql:
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi

# nginx, promtool, redis-server and envsubst for tests/deploy and the multi-instance test, as tools only:
# the tests start their own processes on their own ports. policy-rc.d (the image's, else a temporary one
# answering 101) keeps apt from starting the packages' services.
DEPLOY_TEST_TOOLS := /usr/sbin/nginx /usr/bin/promtool /usr/bin/redis-server /usr/bin/envsubst
$(DEPLOY_TEST_TOOLS) &:
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	if [ -e /usr/sbin/policy-rc.d ]; then tmp_policy=; else tmp_policy=1; \
		printf '#!/bin/sh\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null && $$sudo chmod 755 /usr/sbin/policy-rc.d; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		nginx prometheus redis-server gettext-base >/dev/null; rc=$$?; \
	if [ -n "$$tmp_policy" ]; then $$sudo rm -f /usr/sbin/policy-rc.d; fi; exit $$rc

# wrk, the HTTP load generator of `make bench` and of its smoke run in the tests (Debian's package).
/usr/bin/wrk:
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi

setup-test: $(VENV)/.dev $(BUN) /usr/bin/chromium /usr/lib/postgresql $(DEPLOY_TEST_TOOLS) /usr/bin/wrk

# The market, trade, portfolio and dashboard pages in light and dark mode, taken from the real app
# with real data, into docs/img/ (and test-artifacts/).
screenshots: setup-test
	CNOP_DOCS_SCREENSHOTS=1 $(PY) -m pytest -m browser $(PYTEST_ARGS) tests/browser/test_screenshots.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check cnop_app tests bench alembic rxconfig.py
	$(VENV)/bin/ruff format --check cnop_app tests bench alembic rxconfig.py

format: $(VENV)/.dev
	$(VENV)/bin/ruff format cnop_app tests bench alembic rxconfig.py
	$(VENV)/bin/ruff check --fix cnop_app tests bench alembic rxconfig.py

# PostgreSQL runs beside SQLite in the tests: a throwaway cluster from Debian's package, stopped afterwards.
# Browser tests run after the rest, alone: they build and start the whole app, which would starve
# the timing-sensitive scheduler and mirror tests of CPU on a 2-core machine.
test: setup-test lint
	@url=$$(bash tests/support/pg_cluster.sh start) || exit 1; \
	CNOP_TEST_DATABASE_URL=$$url $(PY) -m pytest -n 2 -m "not browser" $(PYTEST_ARGS) tests; rc=$$?; \
	if [ $$rc = 0 ]; then CNOP_TEST_DATABASE_URL=$$url $(PY) -m pytest -m browser $(PYTEST_ARGS) tests; rc=$$?; fi; \
	bash tests/support/pg_cluster.sh stop; exit $$rc

# Every performance workload, one table (method: docs/performance.md), with a py-spy profile of the order
# path in test-artifacts/bench/. `make bench BENCH_ARGS=--quick` is a smoke run.
bench: setup-test
	PYTHONPATH=. $(PY) bench/run.py --profile test-artifacts/bench $(BENCH_ARGS)

clean:
	rm -rf .web data .pytest_cache
