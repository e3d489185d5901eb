"""Pipeline fixtures live in tests/conftest.py (shared with the reliability and integration tests)."""
