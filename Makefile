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

# The main job: the reference supplier's export, then its live API, through asl-dscr-core.
demo: $(STAMP)
	$(BIN)/python -m fixtures.export_generator --out $(DEMO_EXPORT) --residents 40
	@$(BIN)/care-assure run asl-dscr-core --export $(DEMO_EXPORT) --out reports/out/reference; \
	export_status=$$?; \
	rm -f build/reference-url; \
	$(BIN)/care-assure reference serve --port 0 --url-file build/reference-url > build/reference-server.log 2>&1 & \
	pid=$$!; for i in $$(seq 100); do test -s build/reference-url && break; sleep 0.1; done; \
	REFERENCE_TOKEN=reference-supplier-token $(BIN)/care-assure run asl-dscr-core \
		--api "$$(cat build/reference-url)" --token-env REFERENCE_TOKEN --allow-insecure-local \
		--out reports/out/reference-api; \
	api_status=$$?; kill $$pid; \
	echo "export run: reports/out/reference (exit $$export_status); API run: reports/out/reference-api (exit $$api_status)"; \
	test $$export_status -eq 0 && test $$api_status -eq 0

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
