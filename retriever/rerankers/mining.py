"""Hard negatives mined by this engine, and the one call behind ``retriever train reranker``.

Random negatives teach a code reranker little (any function about something else is easy to
reject); the useful negatives are the ones the first stage ranks high. :func:`mine_negatives`
indexes every distinct positive of the data with the engine's own BM25 (a lexical-only
corpus index) and takes, for each query, the best-ranked texts that are neither its positive
nor a near-duplicate of it (the same identifiers, :data:`NEAR_DUPLICATE` Jaccard or more)
nor the positive of another row with the same query.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from retriever.errors import InputError

__all__ = ["mine_negatives", "train", "NEAR_DUPLICATE"]

NEAR_DUPLICATE = 0.8
_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(word.lower() for word in _WORD.findall(text))


def _near(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE


def mine_negatives(rows: Sequence[tuple], *, count: int = 7, depth: int = 30,
                   batch: int = 256, progress: Callable[[str, int, int], None] | None = None
                   ) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(query, positive, negatives)`` rows with up to ``count`` BM25 hard negatives each.

    Args:
        rows: ``(query, positive)`` or ``(query, positive, negatives)``; negatives a row
            already has come first, mined ones fill up to ``count``.
        count: negatives wanted a row. depth: BM25 hits looked at a query.
        batch: queries a search call.

    Returns:
        One row a row of ``rows``, in order (a row may get fewer than ``count`` negatives
        when the pool is small; the recipe fills those with other rows' positives).
    """
    import retriever
    from encoders.train.inputs import check_pairs

    rows = check_pairs(rows)
    pool: dict[str, int] = {}
    for _, positive, _ in rows:
        pool.setdefault(positive, len(pool))
    texts = list(pool)
    words = [_words(text) for text in texts]
    answers: dict[str, set[int]] = {}
    for query, positive, _ in rows:
        answers.setdefault(query, set()).add(pool[positive])
    with tempfile.TemporaryDirectory(prefix="rerank-pool-") as folder:
        index = retriever.index_documents(
            (retriever.Document(id=str(i), text=text) for i, text in enumerate(texts)),
            index_dir=Path(folder) / "index", lexical_only=True, total=len(texts))
        mined = []
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            hits = index.search_many([query for query, _, _ in part], k=min(depth, len(texts)),
                                     mode="lexical", pipeline="plain")
            for (query, positive, given), found in zip(part, hits, strict=True):
                own = pool[positive]
                chosen = list(given)[:count]
                for hit in found:
                    if len(chosen) >= count:
                        break
                    row = int(hit.path)
                    if row in answers[query] or _near(words[row], words[own]):
                        continue
                    chosen.append(texts[row])
                mined.append((query, positive, tuple(chosen)))
            if progress is not None:
                progress("mine", min(start + batch, len(rows)), len(rows))
    return mined


def train(data, *, out: str | Path, base: str = "all-MiniLM-L6-v2", settings=None,
          dev=None, depth: int = 30, progress: Callable[[str, int, int], None] | None = None,
          command: str | None = None) -> dict:
    """Mine hard negatives for ``data`` (pairs, or a pairs JSONL file or folder; see
    :mod:`encoders.train.inputs`), then train the code cross-encoder into ``out``.

    Returns:
        The manifest the recipe wrote (``out/reranker.json``).
    """
    from encoders.train.inputs import load_pairs, rows_hash
    from encoders.train.reranker import RerankSettings, train_reranker

    settings = settings or RerankSettings()
    if not isinstance(settings, RerankSettings):
        raise InputError("settings must be an encoders.train.reranker.RerankSettings.")
    rows, dev_rows = load_pairs(data, dev)
    provenance = {"source": Path(data).name if isinstance(data, (str, Path)) else "pairs",
                  "input_hash": rows_hash(rows), "negatives": "BM25 (this engine) over the "
                  f"distinct positives, top {depth}, near-duplicates (Jaccard >= "
                  f"{NEAR_DUPLICATE}) and same-query positives dropped"}
    # One pool for both, so dev queries meet negatives as hard as the training ones.
    mined = mine_negatives([*rows, *(dev_rows or [])], count=settings.negatives, depth=depth,
                           progress=progress)
    mined, mined_dev = mined[:len(rows)], mined[len(rows):] or None
    return train_reranker(mined, out=Path(out), base=base, settings=settings, dev=mined_dev,
                          progress=progress, command=command, data=provenance)
