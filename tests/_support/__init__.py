"""Helpers shared by the test modules (which never import each other); see tests/README.md."""
