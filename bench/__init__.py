"""Benchmarks against the peers; results in bench/results/."""
