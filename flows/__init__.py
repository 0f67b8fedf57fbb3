"""Use cases and Prefect flows, and the composition root (``wiring``).

Rule: ``flows`` imports ``schemas``, ``pipeline``, ``aip``, ``ocr_models`` and ``storage``, never ``interfaces``
(``tests/tools/check_imports.py``). Entry points (the ``sohoa`` CLI, the web app) live in ``interfaces/`` and call
the use cases here; only ``flows.wiring`` constructs backends, and only ``schemas.settings`` (with
``flows.prefect_env`` for Prefect's own variables) reads the environment.
"""
