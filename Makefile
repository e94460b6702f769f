# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PORT   ?= 5006
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AS_ROOT = $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: run test setup prepare lab artifacts lint bench clean

# Debian ships venv support in a separate package: install it when venv creation fails.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11-venv && \
	  $(PYTHON) -m venv $(VENV); }

# One resolution with the exact torch pin (norse comes with it: see pyproject.toml). JupyterLab
# opens the jupytext .py notebooks as notebooks: jupyter/overrides.json sets the default viewer.
$(STAMP): pyproject.toml jupyter/overrides.json | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,notebooks]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	install -D -m 644 jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

setup: $(STAMP)

prepare: setup
	$(BIN)/workbench prepare

# Serves at once (the first page's model ships with the package); the other pages' data and
# models are loaded or built in the background meanwhile (`workbench serve --no-prepare` skips).
run: setup
	$(BIN)/workbench serve --port $(PORT)

# JupyterLab on the repository, loopback only, nothing fetched from the network.
lab: setup
	$(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=. $(AS_ROOT) \
	  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

# The prebuilt default models shipped in the package (commit what it writes).
artifacts: setup
	rm -rf workbench/artifacts
	$(BIN)/workbench prepare --retrain --export workbench/artifacts

# Chromium comes from Debian (playwright cannot download browsers offline).
/usr/bin/chromium:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: setup /usr/bin/chromium
	$(BIN)/ruff check workbench widgets tests benchmarks notebooks
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: setup
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/sparse_path.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) build dist
