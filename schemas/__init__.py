"""Data contracts shared by every layer: pydantic models, settings, errors and Vietnamese text rules.

This package imports nothing else of sohoa; every other package may import it.
"""
