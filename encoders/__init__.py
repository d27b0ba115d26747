"""Encoders: texts to normalised float32 vectors."""

from encoders.base import Encoder
from encoders.runtime import clear_model_cache, model_loads

__all__ = ["Encoder", "clear_model_cache", "model_loads"]
