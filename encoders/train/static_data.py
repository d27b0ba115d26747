"""Training texts for the static recipe: teacher-sized windows of long code chunks.

The teacher reads at most ``max_length`` tokens of a text, the static student up to 512: a
chunk of 900 tokens gives the student a target that describes only its first third. Cut into
windows the teacher reads whole, every window is a (text, target) pair that agrees, and a
long chunk gives several training texts instead of one. The student's vector of a whole chunk
is the token mean, which is the length-weighted mean of its windows' vectors, so windows teach
it what the chunk as a whole should mean.
"""

from __future__ import annotations

from collections.abc import Sequence

from retriever.errors import InputError

__all__ = ["teacher_windows"]


def teacher_windows(
    texts: Sequence[str], tokenizer, *, width: int, max_windows: int = 4, batch: int = 2048
) -> list[str]:
    """Cut each text into consecutive spans of at most ``width`` teacher tokens.

    Args:
        texts: the texts.
        tokenizer: the teacher's ``tokenizers.Tokenizer`` (special tokens are not counted, so
            pass ``width`` = the teacher's maximum length minus its two special tokens).
        width: tokens a window holds.
        max_windows: windows kept a text, from its start (a long file must not outweigh the
            rest of the data).
        batch: texts per tokenizer call.

    Returns:
        The windows, in text order; a text of at most ``width`` tokens is one window, itself.
        A text with no token gives no window.

    Raises:
        InputError: ``width`` or ``max_windows`` is not a positive integer.
    """
    for label, value in (("width", width), ("max_windows", max_windows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{label} must be a positive integer, not {value!r}.")
    out: list[str] = []
    for start in range(0, len(texts), batch):
        part = list(texts[start : start + batch])
        encodings = tokenizer.encode_batch(part, add_special_tokens=False)
        for text, encoding in zip(part, encodings, strict=True):
            offsets = encoding.offsets
            if len(offsets) <= width:
                if offsets:
                    out.append(text)
                continue
            for first in range(0, min(len(offsets), width * max_windows), width):
                last = min(first + width, len(offsets)) - 1
                out.append(text[offsets[first][0] : offsets[last][1]])
    return out
