# Every target sets up .venv first (python3 is all a fresh machine needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradtx-installed
export XLA_FLAGS ?= --xla_force_host_platform_device_count=8
export PYTHONHASHSEED := 0

.PHONY: test demo docs bench notebooks lint fixtures clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cli,notebooks,bench,dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests

demo: $(STAMP)
	$(BIN)/python -m gradtx

# Builds the documentation site into build/site (mkdocs --strict: a warning fails the build).
docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Runs every notebook and writes its figures into notebooks/figures/ (the committed PNGs).
notebooks: $(STAMP)
	GRADTX_NOTEBOOK_FIGURES=$(CURDIR)/notebooks/figures $(BIN)/python -m pytest -q -n 2 tests/test_notebooks.py

lint: $(STAMP)
	$(BIN)/ruff check gradtx tests benchmarks
	$(BIN)/ruff format --check gradtx tests benchmarks

# Regenerates tests/fixtures/torch_*.npz (needs torch==2.13.0; CI never runs this).
fixtures: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python tests/torch_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache benchmarks/results/*.tmp
