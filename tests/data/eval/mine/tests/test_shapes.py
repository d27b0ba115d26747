def helper_for_tests(x):
    """Build a value that the tests use for checking areas."""
    y = x + 1
    y = y * 2
    return y
