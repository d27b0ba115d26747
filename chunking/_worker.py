"""A chunking worker process: ``python -m chunking._worker``, started by :mod:`chunking.pool`.

It reads jobs from stdin and writes answers to stdout, each a length-prefixed pickle between
two processes of this same code (nothing is stored): a job is ``(chunker, [SourceFile, ...])``,
the answer ``("ok", [FileChunks, ...])`` or ``("error", exception)``; ``None`` ends it.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import BinaryIO

_HEADER = struct.Struct("<Q")


def read_message(stream: BinaryIO):
    """The next object on ``stream``, or None at its end."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def write_message(stream: BinaryIO, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def main() -> None:
    from chunking.pool import chunk_file

    jobs, answers = sys.stdin.buffer, sys.stdout.buffer
    # Anything a grammar or a logger prints must not corrupt the answers.
    sys.stdout = sys.stderr
    while (job := read_message(jobs)) is not None:
        chunker, files = job
        try:
            answer = ("ok", [chunk_file(chunker, file) for file in files])
        except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001 - an exception that cannot travel
                error = RuntimeError(repr(error))
            answer = ("error", error)
        try:
            write_message(answers, answer)
        except BrokenPipeError:
            # The parent is gone (killed or interrupted): nobody reads answers any more, and
            # a traceback per worker would only bury the parent's own message. os._exit, as
            # the interpreter's exit would flush the broken pipe again and complain.
            os._exit(0)


if __name__ == "__main__":
    main()
