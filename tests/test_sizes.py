from tests.tools.check_sizes import stale_allowances, violations


def test_modules_and_functions_stay_small() -> None:
    """No module over ~500 lines, no function over ~80, unless ``check_sizes.ALLOWED`` states why."""
    assert violations() == []
    assert stale_allowances() == []
