"""Walking source trees and cutting files into AST-aware chunks."""

from chunking.cast import CastChunker, outline
from chunking.chunk import Chunk, Chunker, chunk_id, embedding_text
from chunking.languages import detect_language
from chunking.text import MarkdownChunker, RstChunker, WindowChunker
from chunking.walker import DecodeError, Skipped, SourceFile, WalkResult, read_source, walk

__all__ = [
    "CastChunker",
    "Chunk",
    "Chunker",
    "DecodeError",
    "MarkdownChunker",
    "RstChunker",
    "Skipped",
    "SourceFile",
    "WalkResult",
    "WindowChunker",
    "chunk_id",
    "detect_language",
    "embedding_text",
    "outline",
    "read_source",
    "walk",
]
