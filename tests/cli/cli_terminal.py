"""Running the `retriever` command as a person or a pipe would see it.

``in_terminal`` gives the process real pseudo-terminals (POSIX ``pty``), so what it does only
on a terminal (links, colours, progress bars) happens; ``piped`` gives it pipes. ``styled``
reads back the one SGR attribute the tests look for, and ``foreign_controls`` finds any control
character that is not part of rich's own colour and link sequences.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX only")

COMMAND = [sys.executable, "-c", "from retriever.cli.app import main; main()"]
# What rich writes around text: SGR colours and attributes, and OSC 8 hyperlinks.
SGR = re.compile(r"\x1b\[([0-9;]*)m")
OSC8 = re.compile(r"\x1b\]8;([^;\x1b\x07]*);([^\x1b\x07]*)\x1b\\")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    return {**env, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color", **extra}


def in_terminal(*args: str | Path, cwd: Path, timeout: float = 120) -> tuple[int, bytes, bytes]:
    """``retriever ARGS`` with stdout and stderr each on a terminal of its own:
    ``(exit code, stdout bytes, stderr bytes)``."""
    out_master, out_slave = pty.openpty()
    err_master, err_slave = pty.openpty()
    process = subprocess.Popen([*COMMAND, *map(str, args)], stdin=subprocess.DEVNULL,
                               stdout=out_slave, stderr=err_slave, cwd=cwd, env=_env())
    os.close(out_slave)
    os.close(err_slave)
    received = {out_master: bytearray(), err_master: bytearray()}
    open_ends = set(received)
    deadline = time.monotonic() + timeout
    try:
        while open_ends:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                raise AssertionError(f"retriever {args} ran over {timeout}s")
            ready, _, _ = select.select(list(open_ends), [], [], left)
            for end in ready:
                try:
                    chunk = os.read(end, 65536)
                except OSError:  # EIO: the process closed its side
                    chunk = b""
                if chunk:
                    received[end] += chunk
                else:
                    open_ends.discard(end)
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(out_master)
        os.close(err_master)
    # A terminal turns "\n" into "\r\n"; the tests compare lines.
    return code, bytes(received[out_master]).replace(b"\r\n", b"\n"), \
        bytes(received[err_master]).replace(b"\r\n", b"\n")


def piped(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``retriever ARGS`` with stdout and stderr on pipes."""
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, cwd=cwd,
                          env=_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def plain(text: str) -> str:
    """The text a person reads: rich's colour and link sequences removed."""
    return SGR.sub("", OSC8.sub("", text))


def styled(text: str, attribute: str) -> list[str]:
    """The runs of text shown with one SGR attribute on (``"7"``: reverse video)."""
    runs, current, on = [], [], False
    for piece in re.split(r"(\x1b\[[0-9;]*m)", OSC8.sub("", text)):
        match = SGR.fullmatch(piece)
        if match is None:
            if on:
                current.append(piece)
            continue
        codes = match.group(1).split(";") if match.group(1) else ["0"]
        now, at = on, 0
        while at < len(codes):
            code = codes[at]
            if code in ("38", "48", "58"):  # extended colour: 5;N or 2;R;G;B follow
                at += 3 if codes[at + 1 : at + 2] == ["5"] else 5
                continue
            if code in ("0", "") or code == f"2{attribute}":
                now = False
            elif code == attribute:
                now = True
            at += 1
        if on and not now:
            runs.append("".join(current))
            current = []
        on = now
    return [run for run in runs if run]


def links(text: str) -> list[tuple[str, str]]:
    """``(uri, linked text)`` of every OSC 8 hyperlink."""
    found = []
    for match in re.finditer(OSC8.pattern + r"(.*?)\x1b\]8;;\x1b\\", text):
        found.append((match.group(2), plain(match.group(3))))
    return found


def foreign_controls(text: str) -> list[str]:
    """Control characters left once rich's own SGR and OSC 8 sequences are taken out."""
    return [c for c in plain(text) if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
