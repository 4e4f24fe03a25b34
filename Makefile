# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint typecheck unit bench clean format

run: $(STAMP)
	$(BIN)/cxloop up

# Unit and integration tests on two workers; then the end-to-end tests alone, because they
# assert user-visible latencies (a detractor reaches the KPIs and the webhook within 2 s).
test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup -m "not e2e"
	$(BIN)/pytest -q -p no:cacheprovider -m e2e

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration and not e2e"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .cxloop .mypy_cache .ruff_cache
