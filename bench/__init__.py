"""Benchmarks (not tests): `make bench`, or `python -m bench.inference` and `python -m bench.long_documents`.

Each measured row runs in a child process of its own, so its peak RSS is that row's alone; the parent
gathers the rows, prints a Markdown table and writes it under runs/bench/.
"""
