# geoservice — `make run` serves the API, `make test` runs every check. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GEOSERVICE_DATA_DIR ?= .data

.PHONY: run test stop setup db venv lint bench clean tools cluster-up cluster-down soak notebooks

run: setup
	$(BIN)/geoservice demo --if-empty
	$(BIN)/geoservice keys local-admin
	$(BIN)/geoservice serve

test: setup lint tools
	$(BIN)/pytest

stop:
	@bash scripts/pgcluster.sh stop

# Everything `run` and `test` need: packages, virtualenv, database, migrations.
setup: db venv
	$(BIN)/geoservice db upgrade

db:
	@bash scripts/pgcluster.sh ensure

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "make: cannot create $(VENV): install python3-venv" >&2; exit 2; }
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# OS programs the tests drive: GDAL's ogrinfo/ogr2ogr (GeoPackage, OGC API clients),
# Chromium (the map page, through Playwright), a CJK font for its labels and the bulletins,
# Pango (WeasyPrint lays the bulletins out with it) and poppler's pdftotext/pdftoppm.
tools:
	@bash scripts/os-packages.sh ogrinfo:gdal-bin chromium:chromium \
		/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk \
		pdftoppm:poppler-utils \
		/usr/lib/$(shell uname -m)-linux-gnu/libpangoft2-1.0.so.0:libpangoft2-1.0-0

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy geoservice etl

bench: setup
	@bash scripts/os-packages.sh wrk:wrk
	$(BIN)/geoservice demo --if-empty
	$(BIN)/python -m benchmarks.locate
	$(BIN)/python -m benchmarks.mixed
	$(BIN)/python -m benchmarks.isochrones
	$(BIN)/python -m benchmarks.dispatch
	$(BIN)/python -m benchmarks.version_switch
	$(BIN)/python -m benchmarks.planning
	$(BIN)/python -m benchmarks.tiles
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.grid_design

# The notebooks, executed against the demo, with their figures: docs/notebooks/.
notebooks: setup
	$(BIN)/geoservice demo --if-empty
	$(BIN)/python scripts/execute_notebooks.py

# Several servers behind HAProxy on a primary and a hot standby (see docs/OPERATIONS.md).
cluster-up: setup
	@bash scripts/cluster.sh up $(or $(SERVERS),2)

cluster-down:
	@bash scripts/cluster.sh down

# A bounded soak through the balancer (10 minutes by default; MINUTES=… to change).
soak: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.soak --minutes $(or $(MINUTES),10)

clean: stop
	rm -rf $(VENV) $(GEOSERVICE_DATA_DIR)
