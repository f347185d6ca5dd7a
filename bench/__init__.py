"""Benchmarks: each prints its figures beside a baseline measured in the same run.

Run one with ``python -m bench.<name> --help``; ``--smoke`` runs it on tiny inputs (CI does).
"""
