"""Benchmarks: `make bench` runs them; they print medians and ratios, they do not assert."""
