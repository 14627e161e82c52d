# PoseFramer: `make demo` indexes sample images and serves search; `make test` runs the tests.
# Both create .venv and install everything on a fresh clone; neither needs ../shared.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
export POSEFRAMER_HOME ?= $(CURDIR)/.poseframer
# What `make demo` indexes: the public-domain drawings committed in samples/corpus (no network
# needed), or any folder: `make demo SAMPLES=~/Pictures/reference`,
# `make demo SAMPLES=/usr/share/openclipart/png/people` (after `make clipart`).
SAMPLES ?= samples/corpus
# Where `make samples-download` puts the optional openly licensed images it downloads.
DOWNLOADED_SAMPLES ?= $(POSEFRAMER_HOME)/samples

.PHONY: install browser clipart photos demo samples-download test lint dagster serve clean drawn-model

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

# More public-domain drawings to index: Debian's `openclipart-png` (Open Clip Art Library,
# ~7000 images under /usr/share/openclipart/png), installed as `browser` installs chromium.
clipart:
	@test -d /usr/share/openclipart/png || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
		{ $$sudo apt-get update -qq && \
		  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openclipart-png; } || \
		echo "warning: could not install Debian's openclipart-png; make demo uses samples/corpus"; }

# Real photos of animals and food with nobody in them (Tux Paint's photographic stamps and
# scene photos, GPL-2): `python -m benchmarks.photo_negatives` sets them into scenes for
# `benchmarks.pose_eval --extra-negatives`, and a test reads them. Without them it skips.
photos:
	@test -d /usr/share/tuxpaint/stamps/animals -a -d /usr/share/tuxpaint/templates || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
		{ $$sudo apt-get update -qq && \
		  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    --no-install-recommends tuxpaint-stamps-default tuxpaint-data; } || \
		echo "warning: could not install Debian's Tux Paint stamps; their test will skip"; }

# Index SAMPLES (resuming or skipping what is already indexed), print the address and two
# things to try, and serve. Works offline: the default corpus is in the repository.
demo: install
	$(BIN)/poseframer demo --samples "$(SAMPLES)" --host $(HOST) --port $(PORT)

# Opt-in, needs the network: the openly licensed images of samples/openly-licensed.tsv (with a
# CREDITS.tsv of their licences), then `make demo SAMPLES=$(DOWNLOADED_SAMPLES)`.
samples-download: install
	$(BIN)/python -m pipelines.sources.samples "$(DOWNLOADED_SAMPLES)"
	@echo "now: make demo SAMPLES=$(DOWNLOADED_SAMPLES)"

# Retrain the drawn-figure model (pipelines/pose/drawn/weights/drawn-v1.pt) with the committed
# weights' recipe (pipelines/pose/drawn/train.py): seed 7, 64 000 renders, 5 500 steps of 32, then
# 1 500 steps with drawn people and more drawings without people, then 2 400 steps with bean
# figures, children's drawings and drawn animals (about an hour and a half on 2 CPU cores,
# minutes on a GPU); needs Debian's openclipart-png (make clipart).
DRAWN_TRAIN := $(POSEFRAMER_HOME)/drawn-train
drawn-model: install clipart
	$(BIN)/python -m pipelines.pose.drawn.train --renders 64000 --steps 5500 --seed 7 \
		--cache $(DRAWN_TRAIN) --out $(DRAWN_TRAIN)/stage1.pt
	$(BIN)/python -m pipelines.pose.drawn.train --renders 64000 --steps 1500 --seed 7 --lr 1e-3 \
		--weak --init $(DRAWN_TRAIN)/stage1.pt --cache $(DRAWN_TRAIN) --out $(DRAWN_TRAIN)/stage2.pt
	$(BIN)/python -m pipelines.pose.drawn.train --renders 64000 --steps 2400 --seed 7 --lr 5e-4 \
		--weak --beans 8000 --children 8000 --init $(DRAWN_TRAIN)/stage2.pt --check 0 \
		--cache $(DRAWN_TRAIN)

test: install browser photos
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The Dagster UI over the same definitions and instance as `poseframer index`.
dagster: install
	$(BIN)/python -c 'import pathlib, assets.instance as i; i.open_instance(pathlib.Path("$(POSEFRAMER_HOME)"))'
	DAGSTER_HOME="$(POSEFRAMER_HOME)/dagster" $(BIN)/dagster dev -m assets.definitions

serve: install
	$(BIN)/poseframer serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
