# AdaFocus Workbench. `make demo` and `make test` create .venv/ when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Data and checkpoints are cached here (keyed by config hash); notebooks see the same cache.
export ADAFOCUS_CACHE ?= $(CURDIR)/.cache
# Reproducible CPU numbers: two cores, no oversubscription.
export OMP_NUM_THREADS ?= 2

.PHONY: venv demo test test-fast test-kernels lab figures bench family glance-diagnostic browser clean-cache

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

# the AdaFocus family beside Uni-AdaFocus (notebook 10): TSM vs shift-free on the motion benchmark, X3D and its
# space-time cubes, AdaFocus V1 (PPO); trained two at a time, cached like the demo's models, then the family's
# figures. TSM_SEEDS="0 1 2": the TSM pair at three training seeds (the committed family_tsm.csv)
TSM_SEEDS ?= 0
family: venv
	$(BIN)/python benchmarks/family.py --tsm-seeds $(TSM_SEEDS)

# why the glance learned nothing before the image-set pretraining: pretraining x pooling (about 10 min)
glance-diagnostic: venv
	$(BIN)/python benchmarks/glance_diagnostic.py

# the whole suite, notebooks included (each notebook runs top to bottom in FAST mode)
test: venv
	$(BIN)/python -m pytest tests notebooks --nbmake --nbmake-timeout=600

test-fast: venv
	$(BIN)/python -m pytest tests -m "not slow and not browser"

# The unit tests again under other CPU kernels of PyTorch: the portable ones (default), and AVX2
# where the CPU has AVX-512. They sum floats in another order, as another machine's CPU would, so a
# test that compares such floats exactly fails here instead of on a user's machine. (The slow tests
# compare runs on one machine with itself; the notebooks are not unit tests.)
KERNELS := default $(if $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo yes),avx2,)
test-kernels: venv
	@set -e; for cap in $(KERNELS); do \
	  echo "== unit tests under ATEN_CPU_CAPABILITY=$$cap"; \
	  ATEN_CPU_CAPABILITY=$$cap $(BIN)/python -c "import sys, torch; c = torch.backends.cpu.get_cpu_capability(); \
	    sys.exit(0 if c.lower() == '$$cap' else f'ATEN_CPU_CAPABILITY=$$cap not in effect: {c}')"; \
	  ATEN_CPU_CAPABILITY=$$cap $(BIN)/python -m pytest tests -m "not slow and not browser" -q; \
	done

lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

# The notebooks' sources are notebooks/NN_name.py (jupytext percent format, paired with the .ipynb by
# notebooks/jupytext.toml): edit those, then write the .ipynb (no outputs, stable cell ids, rules checked).
notebooks: venv
	$(BIN)/python scripts/build_notebooks.py

# Debian's Chromium for the real-browser test (root only; the test skips with a reason otherwise).
browser:
	bash scripts/install_browser.sh

clean-cache:
	rm -rf $(ADAFOCUS_CACHE)
