# AdaFocus Workbench. `make demo` and `make test` create .venv/ when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Data and checkpoints are cached here (keyed by config hash); notebooks see the same cache.
export ADAFOCUS_CACHE ?= $(CURDIR)/.cache
# Reproducible CPU numbers: two cores, no oversubscription.
export OMP_NUM_THREADS ?= 2

.PHONY: venv demo test test-fast lab figures bench browser clean-cache

venv: $(STAMP)

# CPU torch first, in its own command, so nothing below can pull a CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: venv
	$(BIN)/python -m adafocus demo

figures: venv
	$(BIN)/python -m adafocus figures

bench: venv
	$(BIN)/python -m adafocus bench

# the whole suite, notebooks included (each notebook runs top to bottom in FAST mode)
test: venv
	$(BIN)/python -m pytest tests notebooks --nbmake --nbmake-timeout=600

test-fast: venv
	$(BIN)/python -m pytest tests -m "not slow and not browser"

lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

# Debian's Chromium for the real-browser test (root only; the test skips with a reason otherwise).
browser:
	bash scripts/install_browser.sh

clean-cache:
	rm -rf $(ADAFOCUS_CACHE)
