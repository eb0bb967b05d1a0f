# Read right after llama.cpp's project() call when `make local-llm` builds
# llama-cpp-python (CMAKE_PROJECT_llama.cpp_INCLUDE in the Makefile).
#
# llama-cpp-python forces llama.cpp's `common` library on (a cache entry set with FORCE,
# so -DLLAMA_BUILD_COMMON=OFF is overwritten), although its Python bindings load only
# libllama and ggml; common is for the multimodal library we do not build. A normal
# variable shadows the cache entry, so neither common nor the cpp-httplib it needs is
# compiled: about 550 CPU-seconds instead of 625 on 2 AVX2 cores (2026-12-07), the
# same libllama.
set(LLAMA_BUILD_COMMON OFF)
