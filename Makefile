# Two commands do everything on a fresh machine:
#   make chat   set up, build the demo index, ask the demo question
#   make test   set up, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp names pyproject.toml's hash, so a changed dependency list reinstalls.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO_INDEX := .newsdesk/demo-index
DEMO_QUESTION := What did the Secretary General warn about?

.PHONY: setup chat test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

chat: setup
	$(BIN)/newsdesk index update --demo --index-dir $(DEMO_INDEX)
	$(BIN)/newsdesk ask "$(DEMO_QUESTION)" --index-dir $(DEMO_INDEX)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: a suite that ran nothing is a failure.
test: lint
	$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

clean:
	rm -rf $(VENV) .newsdesk *.egg-info .mypy_cache .ruff_cache .pytest_cache
