"""Fitted linear heads: a centre and a matrix applied to a model's vectors before any cut.

A head turns a model's unit vector ``x`` into the unit vector of ``(x - mean) @ matrix``. Two
kinds are fitted on a model's vectors of training texts (:mod:`encoders.train.heads`):

- ``pca``: the principal axes, by falling variance. A ``dims=`` prefix of the turned vector keeps
  the most variance a prefix can, so 128 of 384 dimensions keep more of the model's quality
  than the raw prefix of a model never trained for it (Matryoshka without retraining).
- ``itq``: iterative quantisation's orthogonal rotation. The sign bits of the turned vector
  (what the binary index kinds store) lose less than the raw vector's sign bits.
- ``layer``: for a model cut to its first layers (``layers=k``, recorded in the head's info as
  ``"layers"``): the affine map nearest to the same model's full-depth vectors of the same
  texts, so the shallow vectors land where the full ones would. Used only at that depth.

A head is one ``.npz`` file (``mean``: ``(d,)``, ``matrix``: ``(d, d)`` float32, ``info``: a
JSON string: kind, model, what it was fitted on). Heads that ship with a model live in its
folder's ``heads/`` (``encoders/weights/NAME/heads/pca.npz``) and are named by their stem;
any other is named by its path. Neither numpy file is part of a model's fingerprint
(:mod:`encoders.folder` hashes weights and configs); an encoder with a head adds the head's
digest to its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retriever.errors import InputError

__all__ = ["HEAD_KINDS", "HEADS_FOLDER", "Head", "head_names", "read_head", "resolve_head",
           "write_head", "write_npz"]

HEAD_KINDS = ("pca", "itq", "prefix", "layer")
HEADS_FOLDER = "heads"
_SUFFIX = ".npz"
# Keys of the file; anything else in it is refused, so a head cannot smuggle pickled objects.
_KEYS = {"mean", "matrix", "info"}


@dataclass(frozen=True)
class Head:
    """A centre and a square matrix; see the module docstring.

    Attributes:
        mean: ``(d,)`` float32.
        matrix: ``(d, d)`` float32.
        info: kind, model and fit details as written by :func:`write_head`.
        digest: blake2b-128 of the file's arrays and info (joins an encoder's fingerprint).
    """

    mean: np.ndarray
    matrix: np.ndarray
    info: dict
    digest: str

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Unit rows of ``(vectors - mean) @ matrix``, float32, C-contiguous."""
        turned = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix
        norms = np.linalg.norm(turned, axis=1, keepdims=True)
        return np.ascontiguousarray(turned / np.maximum(norms, 1e-12), dtype=np.float32)


def write_head(path: str | Path, *, mean: np.ndarray, matrix: np.ndarray, info: dict) -> Head:
    """Write a head file atomically (a temporary sibling, then ``os.replace``) and return it.

    Raises:
        InputError: the arrays do not form a head (shapes, non-finite values).
    """
    path = Path(path)
    head = _checked(np.asarray(mean, np.float32), np.asarray(matrix, np.float32), dict(info),
                    path)
    write_npz(path, mean=head.mean, matrix=head.matrix,
              info=np.array(json.dumps(head.info, sort_keys=True)))
    return head


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` atomically: a temporary sibling, then ``os.replace``; readable by all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=_SUFFIX,
                                         dir=path.parent)
    os.close(handle)
    try:
        np.savez(temporary, **arrays)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shipped head from other users
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def read_head(path: str | Path) -> Head:
    """Read and check a head file.

    Raises:
        InputError: missing, not a head file, or arrays that do not form a head; the message
            names the file and says how to make a new one.
    """
    path = Path(path)
    fix = "fit one with `retriever train head --model MODEL --data DATA --out FILE`"
    if not path.is_file():
        raise InputError(f"The head file {path} does not exist; {fix}.")
    try:
        with np.load(path, allow_pickle=False) as held:
            keys = set(held.files)
            if keys != _KEYS:
                raise InputError(f"The head file {path} holds {sorted(keys)}, not a head's "
                                 f"{sorted(_KEYS)}; {fix}.")
            mean, matrix, info = held["mean"], held["matrix"], json.loads(str(held["info"]))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"The head file {path} is unreadable ({exc}); {fix}.") from exc
    if not isinstance(info, dict):
        raise InputError(f"The head file {path} has no info record; {fix}.")
    return _checked(mean, matrix, info, path)


def _checked(mean: np.ndarray, matrix: np.ndarray, info: dict, path: Path) -> Head:
    if mean.ndim != 1 or matrix.shape != (len(mean), len(mean)) or not len(mean):
        raise InputError(f"The head {path} has a mean of shape {mean.shape} and a matrix of "
                         f"shape {matrix.shape}; a head needs (d,) and (d, d).")
    if mean.dtype != np.float32 or matrix.dtype != np.float32:
        raise InputError(f"The head {path} is not float32 ({mean.dtype}, {matrix.dtype}).")
    if not (np.isfinite(mean).all() and np.isfinite(matrix).all()):
        raise InputError(f"The head {path} holds NaN or infinite values; fit it again.")
    if info.get("kind") not in HEAD_KINDS:
        raise InputError(f"The head {path} is of kind {info.get('kind')!r}; the kinds are "
                         f"{', '.join(HEAD_KINDS)}.")
    hasher = hashlib.blake2b(digest_size=16)
    for part in (mean, matrix):
        hasher.update(np.ascontiguousarray(part).tobytes())
    hasher.update(json.dumps(info, sort_keys=True).encode())
    return Head(mean=mean, matrix=matrix, info=info, digest=hasher.hexdigest())


def head_names(model_folder: Path | None) -> list[str]:
    """The heads shipped in ``model_folder/heads``, by stem (empty when none)."""
    folder = None if model_folder is None else Path(model_folder) / HEADS_FOLDER
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix == _SUFFIX and p.is_file())


def resolve_head(head: str, model_folder: Path | None, model: str) -> Path:
    """The file of ``head``: a head shipped in ``model_folder/heads`` by stem, or a path.

    Raises:
        InputError: neither; the message lists the model's shipped heads.
    """
    if not isinstance(head, str) or not head.strip():
        raise InputError(f"head must be a shipped head's name or a path, not {head!r}.")
    if head in head_names(model_folder):
        return Path(model_folder) / HEADS_FOLDER / f"{head}{_SUFFIX}"
    path = Path(head).expanduser()
    if path.is_file():
        return path.resolve()
    names = head_names(model_folder)
    known = f"its shipped heads: {', '.join(names)}" if names else "it ships no heads"
    raise InputError(f"No head {head!r} for the model {model!r} ({known}); pass one of them or "
                     "the path of a head file (`retriever train head` fits one).")
