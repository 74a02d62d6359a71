# ionto-analytics: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo
DEMO_DB ?= sqlite:///ionto.db
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint lab postgres browser dictionary bench clean reference

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the toolkit with its test tools

postgres:  ## start the local PostgreSQL server when it is installed but stopped
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  if command -v pg_ctlcluster >/dev/null; then \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start || true; \
	  fi; \
	fi

browser:  ## Debian's headless Chromium, for the report's PDF and browser tests
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install chromium' (browser tests need it)"; \
	  fi; }
	@command -v pdftotext >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; \
	  else \
	    echo "pdftotext is missing: run 'sudo apt-get install poppler-utils' (PDF tests need it)"; \
	  fi; }

demo: setup  ## emulate a clinic network, import, analyse, write the report
	$(BIN)/ionto --db $(DEMO_DB) demo --out $(DEMO_DIR)

lint: setup  ## ruff, and the import contracts that keep the stages one-way
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: setup postgres browser lint  ## the whole test suite, on SQLite and PostgreSQL
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lab: setup  ## JupyterLab on notebooks/ against the demo store
	@test -f ionto.db || $(MAKE) demo
	IONTO_DATABASE_URL=sqlite:///$(CURDIR)/ionto.db $(BIN)/jupyter lab --notebook-dir=notebooks \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

dictionary: setup  ## regenerate data_schemas/README.md from the models
	$(BIN)/python -m data_schemas.dictionary

reference: setup  ## regenerate tests/reference/ (data sets, then the R fits; needs R, r-cran-mice, r-cran-metafor, r-cran-pbkrtest, r-cran-clubsandwich)
	PYTHONPATH=$(CURDIR) $(BIN)/python tests/reference/make_datasets.py
	PYTHONPATH=$(CURDIR) $(BIN)/python tests/reference/make_singular_cell.py
	Rscript tests/reference/mmrm_reference.R
	Rscript tests/reference/small_sample_reference.R  # needs r-cran-pbkrtest, r-cran-clubsandwich
	PYTHONPATH=$(CURDIR) $(BIN)/python tests/reference/make_mice_dataset.py
	Rscript tests/reference/mice_reference.R  # needs r-cran-mice
	Rscript tests/reference/metafor_reference.R  # needs r-cran-metafor

clean:
	rm -rf $(VENV) $(DEMO_DIR) ionto.db .pytest_cache
