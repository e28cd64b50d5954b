"""Issue 10's hardening tests: chaos runs, hostile input and responses, secret hygiene, crash
safety. Each part keeps its fixtures in its own ``*_helpers.py`` module."""
