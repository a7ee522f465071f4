# The two commands of the README:
#   make serve   set everything up (venv, dependencies, model, seed index) and start the service
#   make test    the same set-up plus the test browser, then the whole test suite (what CI runs)
#   make test-fast   only the tests that need no model (pytest -m "not model"), about a minute

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INDEX  ?= data/index
HOST   ?= 127.0.0.1
PORT   ?= 8000

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup model browser index serve test test-fast lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: the local CPU wheel (any other version pulls CUDA packages).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Ray for the cluster tests (the 'cluster' extra, and 'serve': Ray Serve); serve does not need it.
$(VENV)/.cluster: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev,cluster,serve]"
	touch $@

model: setup
	$(BIN)/python -m indexer models install

# Build the seed index once; later runs only pick up changed seed files (a no-op otherwise).
index: model
	@if [ -e $(INDEX) ]; then $(BIN)/python -m indexer add $(INDEX) seeds -q; \
	else $(BIN)/python -m indexer build seeds --out $(INDEX); fi

serve: index
	$(BIN)/python -m qa_service serve --index $(INDEX) --host $(HOST) --port $(PORT)

# Chromium + chromedriver for tests/test_browser.py (apt-get, as root; a no-op once there).
# In CI (env CI set) a failure stops here; elsewhere it is a warning and those tests skip.
browser: setup
	@VENV=$(VENV) scripts/install-browser.sh || case "$$(echo "$${CI:-}" | tr A-Z a-z)" in \
	    ""|0|false|no) echo "make browser: no headless Chromium; tests/test_browser.py will skip" >&2 ;; \
	    *) exit 1 ;; \
	esac

test: model browser $(VENV)/.cluster
	$(BIN)/python -m pytest -q -ra

test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not model"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
