# Quick start:  make demo   (set up + train the demo models on digits, write runs/demo/report.md)
#               make test   (set up + run the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

# The pinned, tested versions (requirements-lock.txt, from requirements.txt's ranges), then
# jaxgen itself, editable and without dependencies: they are all pinned already.
$(STAMP): requirements-lock.txt requirements.txt setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.demo --workdir runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -n auto --durations=15 tests   # one worker per core (pytest-xdist): compilation is single-threaded

bench: $(STAMP)
	$(PY) -m experiments.benchmarks.sampling
	$(PY) -m experiments.benchmarks.train_step

clean:
	rm -rf $(VENV) runs .pytest_cache
