def area_of_circle(radius):
    """Compute the area of a circle from its radius. Uses pi from math.

    Args:
        radius: the radius.
    """
    import math

    squared = radius * radius
    return math.pi * squared


def first_twin(items):
    """Return the first item of the list or None when empty."""
    if not items:
        return None
    head = items[0]
    return head


def second_twin(items):
    """Return the first item of the list or None when empty."""
    if items:
        return items[0]
    value = None
    return value
