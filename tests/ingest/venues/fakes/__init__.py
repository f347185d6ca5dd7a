"""Fake venues for tests: scripts of what each venue sends, served by a local server."""
