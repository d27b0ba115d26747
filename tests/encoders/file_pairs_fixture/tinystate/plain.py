def helper(items):
    """Count the items that are neither empty nor None in a list."""
    kept = [item for item in items if item]
    total = len(kept)
    return total
