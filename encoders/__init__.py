"""Encoders: texts to normalised float32 vectors."""

from encoders.base import Encoder
from encoders.runtime import clear_model_cache, model_loads
from encoders.static import StaticEncoder

__all__ = ["Encoder", "StaticEncoder", "clear_model_cache", "model_loads"]
