"""Named ranking pipelines: what :meth:`retriever.Index.search` answers with.

A preset is a function ``(index, *, mode, depth, filter, **knobs) -> Stage``:

The default is ``"code"``.

- ``"plain"``: the mode's first stages alone (dense, BM25, or their reciprocal-rank fusion);
- ``"code"``: the first stages (for hybrid, the query-type-aware :class:`~retriever.ranking.
  fusion.Blend` when the weights have a ``fusion`` entry), then the code priors of
  :mod:`retriever.ranking.priors` with the weights fitted for that mode
  (:mod:`retriever.ranking.fitted`);
- ``"code-files"``: ``"code"`` with per-file saturation, for one file per slot (better on
  file-level targets, worse on line-level ones). On a corpus of
  documents (no code) no prior applies: hybrid is min-max score fusion with the weight of
  its kind, :data:`~retriever.ranking.fitted.DOCUMENTS_FUSION` for prose (fitted on SciFact
  train) or :data:`~retriever.ranking.fitted.CODE_DOCUMENTS_FUSION` when most documents are
  source code (fitted on CoSQA dev; with the fast tier's static vectors as a third side,
  :data:`~retriever.ranking.fitted.CODE_DOCUMENTS_FULL_FUSION`, when the index holds them),
  dense and lexical their first stage alone; on an index
  built before the symbol table existed the definition prior does nothing and the others
  still apply.

:func:`code_pipeline` builds the ``code`` stage with any weights (what tuning and ablations
use).
"""

from __future__ import annotations

from collections.abc import Callable

from retriever.errors import InputError
from retriever.pipeline import Stage
from retriever.ranking.context import context_of
from retriever.ranking.fitted import (
    CODE_DOCUMENTS_FULL_FUSION,
    CODE_DOCUMENTS_FUSION,
    DOCUMENTS_FUSION,
    weights_for,
)
from retriever.ranking.fusion import Blend
from retriever.ranking.priors import (
    Definitions,
    FileCoherence,
    FileSaturation,
    Normalize,
    PathPrior,
    PathTerms,
    Priors,
)

__all__ = ["PRESETS", "DEFAULT", "preset", "code_pipeline", "code_priors"]

# The first-stage depth Index.search_many asks for at its default k.
_DEPTH = 100


def _plain(index, *, mode, depth, filter, **knobs) -> Stage:  # noqa: A002
    return index.stage(mode, depth=depth, filter=filter, **knobs)


def code_priors(index, weights: dict, *, filter=None) -> Priors:  # noqa: A002
    """The prior chain for ``index`` with ``weights`` (a dict shaped like
    :data:`retriever.ranking.fitted.FITTED` entries; a stage left out is not applied)."""
    context = context_of(index)
    allowed = None
    if filter is not None:
        allowed = filter.mask(context.paths_of_rows(), context.languages_of_rows())
    stages = [Normalize(context, **weights.get("normalize", {}))]
    if "definitions" in weights:
        stages.append(Definitions(context, allowed=allowed, **weights["definitions"]))
    if "path_terms" in weights:
        stages.append(PathTerms(context, **weights["path_terms"]))
    if "coherence" in weights:
        stages.append(FileCoherence(context, **weights["coherence"]))
    if "path_prior" in weights:
        stages.append(PathPrior(context, **weights["path_prior"]))
    if "saturation" in weights:
        stages.append(FileSaturation(context, **weights["saturation"]))
    return Priors(stages, fitted=weights.get("fitted", ""))


def code_pipeline(index, *, mode, depth, filter=None, weights: dict | None = None,  # noqa: A002
                  **knobs) -> Stage:
    """First stages of ``mode`` (``weights["depth"]`` deep at the default k) then the code
    priors."""
    mode = getattr(mode, "value", mode)
    weights = weights_for(mode) if weights is None else weights
    # The depth the weights were fitted with; a deeper list only when many hits are wanted
    # (Index.search_many asks for more than _DEPTH only when k > _DEPTH / 3).
    if depth <= _DEPTH:
        depth = min(depth, int(weights.get("depth", depth)))
    context = context_of(index)
    code = context.code
    # Documents get no priors, so their fusion has weights of its own, by kind (fitted.py);
    # source code with the fast tier's vectors beside the transformer's fuses those too.
    fast = None
    if mode == "hybrid" and context.code_documents and index.tier == "dense":
        fast = index.tier_stage("fast", depth=depth, filter=filter)
    documents = (DOCUMENTS_FUSION if not context.code_documents else
                 CODE_DOCUMENTS_FUSION if fast is None else CODE_DOCUMENTS_FULL_FUSION)
    fusion = weights.get("fusion") if code else {
        key: value for key, value in documents.items() if key != "fitted"}
    if mode == "hybrid" and fusion:
        if "fast" in fusion:
            fusion = {**fusion, "fast": fast, "fast_weight": fusion["fast"]}
        first = Blend(index.stage("dense", depth=depth, filter=filter, **knobs),
                      index.stage("lexical", depth=depth, filter=filter, **knobs),
                      **fusion)
    else:
        first = index.stage(mode, depth=depth, filter=filter, **knobs)
    if not code:
        return first
    return first >> code_priors(index, weights, filter=filter)


def _code(index, *, mode, depth, filter, **knobs) -> Stage:  # noqa: A002
    return code_pipeline(index, mode=mode, depth=depth, filter=filter, **knobs)


def _code_files(index, *, mode, depth, filter, **knobs) -> Stage:  # noqa: A002
    weights = weights_for(getattr(mode, "value", mode), files=True)
    return code_pipeline(index, mode=mode, depth=depth, filter=filter, weights=weights,
                         **knobs)


PRESETS: dict[str, Callable[..., Stage]] = {"plain": _plain, "code": _code,
                                            "code-files": _code_files}
DEFAULT = "code"


def preset(name: str | None, index, **arguments) -> Stage:
    """The stage of preset ``name`` (None: :data:`DEFAULT`) for ``index``."""
    try:
        make = PRESETS[DEFAULT if name is None else name]
    except (KeyError, TypeError):
        raise InputError(
            f"Unknown ranking pipeline {name!r}; known: {', '.join(sorted(PRESETS))}."
        ) from None
    return make(index, **arguments)
