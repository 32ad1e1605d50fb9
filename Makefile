# Two commands on a fresh machine: `make demo` and `make test`.
# Each makes the virtual environment .venv on first use and installs minigrad into it (editable).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench gpu-test clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,examples,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) examples/04_digits_mlp.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check minigrad tests examples benchmarks
	$(PY) -m ruff format --check minigrad tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_cpu.py

# On a machine with a CUDA GPU and CuPy (no install needed: runs from the tree).
gpu-test:
	PYTHONPATH=. $(PYTHON) -m pytest -m gpu -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
