"""Tests of dcgan.models."""
