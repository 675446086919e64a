# make venv | make demo | make test  (see README.md)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: venv
	$(BIN)/python -m pipeline.main --langs tel,hin --preset demo

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/select_bench.py

clean:
	rm -rf $(VENV) out *.egg-info
