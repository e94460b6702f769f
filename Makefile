# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PORT   ?= 5006
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test setup prepare lint bench clean

# Debian ships venv support in a separate package: install it when venv creation fails.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11-venv && \
	  $(PYTHON) -m venv $(VENV); }

# One resolution with the exact torch pin, then norse without its torchvision requirement.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,notebooks]"
	$(BIN)/pip install -q --no-deps "norse==1.1.0"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

prepare: setup
	$(BIN)/workbench prepare

run: prepare
	$(BIN)/workbench serve --port $(PORT)

# Chromium comes from Debian (playwright cannot download browsers offline).
/usr/bin/chromium:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: setup /usr/bin/chromium
	$(BIN)/ruff check workbench widgets tests benchmarks notebooks
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) data/cache
