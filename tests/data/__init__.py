"""Tests of dcgan.data."""
