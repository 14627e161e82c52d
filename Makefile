# PoseFramer: `make demo` indexes sample images and serves search; `make test` runs the tests.
# Both create .venv and install everything on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EVALSET_IMAGES := ../shared/data/evalset/images
HOST ?= 127.0.0.1
PORT ?= 8000
export POSEFRAMER_HOME ?= $(CURDIR)/.poseframer
SAMPLES ?= $(if $(wildcard $(EVALSET_IMAGES)),$(EVALSET_IMAGES),$(POSEFRAMER_HOME)/samples)

.PHONY: install browser demo test lint dagster serve clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

# The browser test's Chromium: Debian's `chromium` package, which Playwright drives (it never
# downloads a browser). Without it that test skips and says so. Needs root or sudo; where
# neither works, `make test` goes on without it (the browser test then skips with the reason).
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
		{ $$sudo apt-get update -qq && \
		  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "warning: could not install Debian's chromium; the browser test will skip"; }

demo: install
	@if [ "$(SAMPLES)" = "$(POSEFRAMER_HOME)/samples" ]; then \
		$(BIN)/python -m pipelines.samples "$(SAMPLES)"; fi
	$(BIN)/poseframer index "$(SAMPLES)"
	$(BIN)/poseframer serve --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The Dagster UI over the same definitions and instance as `poseframer index`.
dagster: install
	$(BIN)/python -c 'import pathlib, assets.indexing as i; i.open_instance(pathlib.Path("$(POSEFRAMER_HOME)"))'
	DAGSTER_HOME="$(POSEFRAMER_HOME)/dagster" $(BIN)/dagster dev -m assets.definitions

serve: install
	$(BIN)/poseframer serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
