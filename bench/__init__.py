"""Benchmarks, run as scripts (`python bench/ingest.py`); a package so the tests and mypy
can import bench.scripted_llm by one name."""
