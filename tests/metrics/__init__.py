"""Tests of dcgan.metrics."""
