"""Text that is safe to show: indexed content and file names can carry terminal controls.

A snippet or a file name can hold ``ESC ]0;title BEL`` (retitle the window),
``ESC [2J`` (clear the screen) or ``ESC ]52;c;... BEL`` (write the clipboard). Printed raw,
the terminal obeys them. Everything a front end shows a person goes through
:func:`printable`; everything it writes as JSON goes through :func:`json_text`.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["printable", "json_text"]

# C0 controls except tab and newline, DEL, C1 controls (0x9b is a one-byte CSI on
# 8-bit terminals), and surrogates (what argv or a file name holds for undecodable bytes).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# In json.dumps(..., ensure_ascii=False) output, C0 is already escaped; DEL and C1 are not,
# and a surrogate cannot be encoded as UTF-8 at all. U+2028 and U+2029 are escaped too:
# str.splitlines() and some JSON Lines readers split on them, which would cut a record in two.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # surrogateescape: show the byte that was there
    if code >= 0xD800:
        return f"\\u{code:04x}"
    return f"\\x{code:02x}"


def printable(text: Any) -> str:
    """``text`` with every control character shown as a visible, inert escape.

    ``"a\\x1b[2J"`` becomes ``"a\\\\x1b[2J"`` (a backslash, ``x1b``), an undecodable byte
    carried as a surrogate becomes ``\\\\xff``. Newlines, tabs and all printable Unicode are
    kept, so ordinary text and code read exactly as before. The result is pure printable
    text: no byte of it can start a terminal escape sequence.

    Args:
        text: anything; non-strings are converted with ``str()`` first.
    """
    return _UNSAFE.sub(_visible, text if isinstance(text, str) else str(text))


def _json_escape(match: re.Match) -> str:
    code = ord(match.group())
    # U+FFFD for a surrogate: a lone "\\udcff" escape is legal JSON text, but strict decoders
    # (serde_json, Go's, jq) reject it or replace it anyway.
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else f"\\u{code:04x}"


def json_text(value: Any, *, sort_keys: bool = False, indent: int | None = 2) -> str:
    """``value`` as JSON that is always valid UTF-8 and inert on a terminal.

    Strings keep their exact value, with two exceptions forced by the output: DEL, C1
    controls and the line and paragraph separators (U+2028, U+2029) are written as
    ``\\uXXXX`` escapes (same value once decoded), and surrogates, which UTF-8 cannot encode,
    become U+FFFD.

    Args:
        value: anything ``json.dumps`` accepts.
        sort_keys: sort object keys (stable output for manifests).
        indent: spaces per level; None writes one line with no newline in it at all (a
            JSON Lines record).
    """
    separators = (",", ":") if indent is None else None
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(
        value, indent=indent, ensure_ascii=False, sort_keys=sort_keys, separators=separators,
    ))
