"""Benchmarks: speed and memory measured as ratios against baselines of the same run.

`python -m benchmarks` compares mapper with raw drivers, a hand-written layer and peer ORMs
(`__main__.py`; results in results/); `python -m benchmarks.profiling` shows where mapper
spends its time; `python -m benchmarks.memory_backend` times the memory backend.
"""
