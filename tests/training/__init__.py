"""Tests of dcgan.training."""
