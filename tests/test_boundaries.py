from tests.tools.check_imports import violations


def test_packages_respect_import_boundaries() -> None:
    assert violations() == []
