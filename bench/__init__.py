"""Benchmarks: scripts that print figures. Timing is measured here, never asserted in tests."""
