# care-assure: `make demo` runs the default suite on the reference supplier; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
DEMO_EXPORT := build/reference-export

.PHONY: demo test lint typecheck tables bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m fixtures.export_generator --out $(DEMO_EXPORT) --residents 40
	$(BIN)/care-assure run asl-dscr-core --export $(DEMO_EXPORT) --out reports/out/reference \
		--format json,junit; status=$$?; \
	echo "reports written to reports/out/reference (exit $$status)"; \
	test $$status -eq 0

test: $(STAMP)
	$(BIN)/ruff check harness fixtures tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check harness fixtures tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Regenerate the committed R4 structure table from the R4 definitions in ../shared.
tables: $(STAMP)
	$(BIN)/python -m harness.fhir.generate $(SHARED)/data/fhir-r4/definitions

bench: $(STAMP)
	$(BIN)/python benchmarks/export_throughput.py

clean:
	rm -rf $(VENV) build reports/out .pytest_cache .mypy_cache .ruff_cache
