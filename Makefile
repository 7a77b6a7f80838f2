# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint bench clean chromium prometheus

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) chromium prometheus

## Synthetic tests need a Chromium: Debian's package as root, else Playwright's build; a no-op once present.
chromium: $(STAMP)
	@sh scripts/install-chromium.sh $(PY)

## The metrics tests scrape with a real Prometheus (and check with promtool): Debian's package as root; a no-op once present.
prometheus:
	@sh scripts/install-prometheus.sh

## Start embedded Postgres + Redis (unless DATABASE_URL/REDIS_URL are set), migrate,
## then the local gateway, every function of stack.yml, the connector and the cron emulator.
run: $(STAMP) chromium prometheus
	$(PY) -m openfaas.local run

test: $(STAMP) chromium prometheus
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/pipeline_throughput.py

clean:
	rm -rf .data
