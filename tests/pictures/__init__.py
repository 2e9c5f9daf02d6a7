"""Tests of dcgan.pictures."""
