"""Rebuild tiny-strings-1.0.0.tgz (the npm-like fixture) from npm-tiny-strings/.

    python tests/data/mining/make_fixture.py

Fixed member order, times and owners, so the bytes (and the sha256 the tests read) are stable.
The Debian-like fixture, deb-tiny/, is a tree as `dpkg-deb -R` unpacks one; the tests build
the .deb from it with `dpkg-deb --build`.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    source = HERE / "npm-tiny-strings"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    with gzip.GzipFile(HERE / "tiny-strings-1.0.0.tgz", "wb", mtime=0) as out:
        out.write(buffer.getvalue())


if __name__ == "__main__":
    main()
