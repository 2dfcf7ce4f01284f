# placesense: `make demo` starts a working system, `make test` runs the whole suite. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_ARGS ?=

.PHONY: setup system venv lint typecheck test demo stop bench screenshots clean help

help:
	@echo "make demo   - install what is missing, start broker, InfluxDB, placesense and a simulated fleet"
	@echo "make stop   - stop everything 'make demo' started"
	@echo "make test   - the same set-up, then lint, type checks and the whole test suite"
	@echo "make bench  - the same set-up, then 'placesense bench \$$(BENCH_ARGS)'"
	@echo "make screenshots - the same set-up, then docs/screenshots/*.png of what make demo shows (headless Chromium)"

setup: system venv

system:
	@bash scripts/ensure-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "placesense: creating the Python environment in $(VENV) (first time takes a few minutes)"
	@mkdir -p build
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip > build/pip.log 2>&1 \
		|| { tail -n 30 build/pip.log; exit 1; }
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]' >> build/pip.log 2>&1 \
		|| { tail -n 30 build/pip.log; echo "placesense: installing Python packages failed; see build/pip.log"; exit 1; }
	@mkdir -p build/typecheck && ln -sfn ../../firmware-sim build/typecheck/firmware_sim
	@touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: venv
	MYPYPATH=build/typecheck $(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest

demo: setup
	$(BIN)/placesense demo

stop: venv
	$(BIN)/placesense demo --stop

bench: setup
	$(BIN)/placesense bench $(BENCH_ARGS)

screenshots: setup
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
