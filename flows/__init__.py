"""Orchestration and entry points: the Prefect flows, the composition root (``wiring``) and the ``sohoa`` CLI.

Rule: every entry point (CLI now, web app later) lives in ``flows/``; no extra top-level package.
"""
