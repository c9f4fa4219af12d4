"""Helpers and shared data for the tests, imported as `support.<module>`."""
