# care-assure: `make demo` runs the default suite on the reference supplier; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
DEMO_EXPORT := build/reference-export
DEMO_ATTESTATIONS := fixtures/attestations/attestations.yaml

.PHONY: demo test lint typecheck tables packs bench clean

# The SARIF 2.1.0 JSON schema (rtm.5) as Microsoft publishes it in an npm package; fetched from the
# npm registry for the SARIF validation test, checked against its SHA-256, never committed.
SARIF_SCHEMA := build/sarif/sarif-2.1.0-rtm.5.json
SARIF_SCHEMA_SHA256 := 2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the reference supplier's export, then its live API, through asl-dscr-core.
demo: $(STAMP)
	$(BIN)/python -m fixtures.export_generator --out $(DEMO_EXPORT) --residents 40
	@$(BIN)/care-assure run asl-dscr-core --export $(DEMO_EXPORT) --attestations $(DEMO_ATTESTATIONS) \
		--out reports/out/reference; \
	export_status=$$?; \
	rm -f build/reference-url; \
	$(BIN)/care-assure reference serve --port 0 --url-file build/reference-url > build/reference-server.log 2>&1 & \
	pid=$$!; for i in $$(seq 100); do test -s build/reference-url && break; sleep 0.1; done; \
	REFERENCE_TOKEN=reference-supplier-token $(BIN)/care-assure run asl-dscr-core \
		--api "$$(cat build/reference-url)" --token-env REFERENCE_TOKEN --allow-insecure-local \
		--attestations $(DEMO_ATTESTATIONS) --out reports/out/reference-api; \
	api_status=$$?; kill $$pid; \
	echo "export run: reports/out/reference (exit $$export_status); API run: reports/out/reference-api (exit $$api_status)"; \
	test $$export_status -eq 0 && test $$api_status -eq 0

test: $(STAMP) $(SARIF_SCHEMA)
	$(BIN)/ruff check harness fixtures tests benchmarks
	$(BIN)/mypy
	CARE_ASSURE_SARIF_SCHEMA=$(SARIF_SCHEMA) $(BIN)/python -m pytest -n auto

$(SARIF_SCHEMA):
	rm -rf build/sarif && mkdir -p build/sarif
	cd build/sarif && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 > /dev/null \
		&& tar -xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json \
		&& mv package/lib/schemas/sarif-2.1.0-rtm.5.json . && rm -rf package *.tgz
	echo "$(SARIF_SCHEMA_SHA256)  $(SARIF_SCHEMA)" | sha256sum --check --quiet

lint: $(STAMP)
	$(BIN)/ruff check harness fixtures tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Regenerate the committed R4 structure table from the R4 definitions in ../shared, and the parsed
# FHIRPath of the bundled packs (harness/fhirpath_parsed.json).
tables: $(STAMP)
	$(BIN)/python -m harness.fhir.generate $(SHARED)/data/fhir-r4/definitions
	$(BIN)/python -m harness.packs.parsed_paths

# Regenerate the UK Core packs from the UK Core definitions in ../shared; review the diff before committing.
UKCORE_STU2 := Patient Organization Practitioner PractitionerRole Location RelatedPerson Encounter Condition \
	AllergyIntolerance Medication MedicationStatement MedicationRequest MedicationAdministration Observation
UKCORE_DRAFT := CarePlan CareTeam Consent Flag DocumentReference EpisodeOfCare QuestionnaireResponse Provenance AuditEvent
PACKS_OUT ?= standards/uk-core
packs: $(STAMP)
	$(BIN)/care-assure packs generate --from-package $(SHARED)/data/ukcore-stu2 --out $(PACKS_OUT)/stu2.yaml \
		--pack uk-core.stu2 --title "UK Core STU2 profiles used by a social care record" --release 2.0.2 \
		--effective-from 2025-02-24 --standard-id UKCore-STU2 --standard-title "HL7 FHIR UK Core STU2" \
		--source "UK Core STU2 release 2.0.2 (NHSDigital/FHIR-R4-UKCORE-STAGING-MAIN tag 2.0.2)" \
		$(foreach p,$(UKCORE_STU2),--profile UKCore-$(p))
	$(BIN)/care-assure packs generate --from-package $(SHARED)/data/ukcore-current --out $(PACKS_OUT)/draft.yaml \
		--pack uk-core.draft --title "UK Core current-build (draft) profiles used by a social care record" \
		--release 0.0.0-draft.20250620 --effective-from 2025-06-20 --standard-id UKCore-Draft \
		--standard-title "HL7 FHIR UK Core current build (STU3 sequence, draft)" \
		--source "UK Core current build (NHSDigital/FHIR-R4-UKCORE-STAGING-MAIN main, 2025-06-20)" \
		$(foreach p,$(UKCORE_DRAFT),--profile UKCore-$(p))

# `make bench BASELINE_REF=<commit>` also measures that commit's harness on the same export, from a
# temporary git worktree (removed afterwards).
bench: $(STAMP)
	@if [ -n "$(BASELINE_REF)" ]; then \
		rm -rf build/baseline; git worktree add --detach build/baseline $(BASELINE_REF) > /dev/null && \
		$(BIN)/python benchmarks/export_throughput.py --baseline build/baseline; status=$$?; \
		git worktree remove --force build/baseline; exit $$status; \
	else $(BIN)/python benchmarks/export_throughput.py; fi

clean:
	rm -rf $(VENV) build reports/out .pytest_cache .mypy_cache .ruff_cache
