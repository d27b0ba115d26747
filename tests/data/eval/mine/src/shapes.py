"""Geometry helpers."""


def area_of_circle(radius):
    """Compute the area of a circle from its radius. Uses pi from math.

    Args:
        radius: the radius.
    """
    import math

    squared = radius * radius
    return math.pi * squared


def tiny(x):
    """Return the argument doubled for callers."""
    return x * 2


def short_doc(values):
    """Sum values."""
    total = 0
    for value in values:
        total += value
    return total


class Box:
    """A box."""

    def __init__(self, width, height):
        """Build a box with the given width and height."""
        self.width = width
        self.height = height
        self.depth = 0

    def volume(self, depth):
        """Compute the volume of the box for a given depth.

        More details here.
        """
        self.depth = depth
        base = self.width * self.height
        return base * depth


def undocumented(a, b):
    total = a + b
    total = total * 2
    return total


def test_area_is_positive():
    """Check that the area of a circle is positive."""
    value = area_of_circle(1)
    assert value > 0
    assert value < 4
