"""Tests of the entry points (the command line, the notebooks, the benchmark scripts) and of the repo itself."""
