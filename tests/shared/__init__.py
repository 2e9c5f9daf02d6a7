"""Tests of the top-level shared modules: config, checks, files, lock, paths, registry."""
