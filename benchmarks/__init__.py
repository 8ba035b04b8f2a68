"""Benchmarks of fetch and cache latency, side by side with the tools users would pick instead.

Run ``python -m benchmarks`` (full sizes) or ``python -m benchmarks --quick`` (CI sizes).
Every scenario runs its baselines in the same process and reports ratios, never bare seconds.
"""
