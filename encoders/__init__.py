"""Encoders: texts to normalised float32 vectors."""

from encoders.base import Encoder

__all__ = ["Encoder"]
