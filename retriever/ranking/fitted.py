"""The fitted weights of the ``code`` preset, and where they came from.

Each entry names the data it was fitted on and the command that fitted it (scratch folders at
their defaults, ``../bench`` or ``$DENSE_RETRIEVER_BENCH``; see benchmarks/README.md); the preset
prints it with its stages (``repr``). To refit, run the command and paste the ``weights`` of the
JSON it writes here.

Lexical (the fit on 30 tune-half semble repositories, lexical-only builds, with a line-level
guard: the objective loses 5 x any drop of a mined package's line-level NDCG@10 beyond 0.01
below plain BM25) turned per-file saturation off (decay 1.0) and embedded-identifier boosts
down (0.25): both are what semble's stack gains on file-level targets and what costs it
line-level precision (see the ranking section of benchmarks/RESULTS.md). One value is set by
hand among ties: the fit took docs 0.1 where 0.3 scores the same on the tune half (0.8633) and
on all 60; 0.3 keeps a question about installing able to find the docs.

``path_terms.spread`` (added later; 1.0 before, every chunk of a matching file got the whole
file-name gain) was chosen alone, the other weights kept, on the tune half from 0, 0.1, 0.25,
0.5 and 1: 0.25 in both modes (lexical tune 0.8678 -> 0.8769, hybrid 0.8975 -> 0.9030; the
full refit with it in the grid, lexical objective 0.8759, cost the held-out line-level set
sentence_transformers 0.03, so it was not taken). See the ranking section of
benchmarks/RESULTS.md.

``path_terms.long`` and ``coherence.long`` (lexical only; added later, off before): a query
with more content words than that gets ``long / n`` of the file-name gain and of the coherence
lift. Chosen together, every other weight kept, by ``benchmarks/tune_ranking.py sweep`` over
0 (off), 5, 6, 7, 8 and 10 each, on the tune half with the line-level guard: 5 and 6 (objective
0.8769 -> 0.8777). With them the held-out sentence_transformers line-level set is 0.009 below
plain instead of 0.017 (benchmarks/results/ranking/sweep-lexical.json, line-level-lexical.json).
Hybrid and dense keep them off: neither was measured with them.
"""

from __future__ import annotations

import copy

__all__ = ["CODE_DOCUMENTS_FULL_FUSION", "CODE_DOCUMENTS_FUSION", "DOCUMENTS_FUSION", "FITTED",
           "weights_for"]

_LEXICAL_COMMAND = (
    "python benchmarks/tune_ranking.py fit --mode lexical --rounds 2 --seed 0 --line anyio "
    "--line fsspec --line packaging --line joblib (tune half, 30 semble repositories, "
    "line-level guard anyio, fsspec, packaging, joblib; objective 0.8633)"
)

_LEXICAL = {
    "depth": 50,
    "definitions": {"symbol": 3.0, "embedded": 0.25, "word": 0.0, "exact": 1.0, "style": 0.0,
                    "parts": 0.3, "qualifier": 0.3, "stem": 2.0, "limit": 20},
    "path_terms": {"stem": 1.5, "folder": 1.0, "mention": 1.0, "symbol": 0.25, "spread": 0.25,
                   "long": 5},
    "coherence": {"weight": 0.3, "long": 6},
    "path_prior": {"intents": True, "test": 0.3, "example": 0.3, "benchmark": 0.1,
                   "docs": 0.3, "generated": 1.0, "vendored": 1.0, "compat": 0.3,
                   "reexport": 0.5, "declaration": 0.7, "amalgamated": 0.3},
    "saturation": {"after": 3, "decay": 1.0, "split": 1.0, "keep": 1.0},
    "fitted": _LEXICAL_COMMAND + "; docs 0.3 of the tied 0.1 and 0.3; path_terms.spread 0.25, "
              "chosen alone on the tune half, the rest kept; path_terms.long 5 and "
              "coherence.long 6 chosen together by python benchmarks/tune_ranking.py sweep "
              "--mode lexical --sweep path_terms.long=0,5,6,7,8,10 --sweep "
              "coherence.long=0,5,6,7,8,10 --line anyio --line fsspec --line packaging "
              "--line joblib (tune half, objective 0.8769 -> 0.8777), the rest kept",
}

# Hybrid: fitted on all 30 tune-half repositories with the default model's vectors
# (code-minilm-v1, embedded once on a GPU machine into a vector cache by
# benchmarks/gpu_vectors.py; the builds embed nothing), starting from the weights fitted with
# all-MiniLM-L6-v2's, with the line-level guard (its packages indexed with code-minilm-v1 too).
# Min-max score fusion replaced RRF: RRF scores of one query lie close together, so additive
# boosts drowned them. The refit raised coherence (0.3 -> 0.4), the file-stem definition boost
# (0.5 -> 2.0) and the folder-term match (0.5 -> 1.5), dropped sub-token definition matches
# (0.5 -> 0) and demoted tests further (0.3 -> 0.1): tune 0.888 -> 0.8975, check 0.834 ->
# 0.8495, all 60 0.861 -> 0.8735, every line-level set within 0.01 of plain
# (benchmarks/results/ranking/report-hybrid.json).
_HYBRID = {
    "depth": 50,
    "fusion": {"method": "score", "symbol": 0.65, "natural": 0.5, "k": 60},
    "definitions": {"symbol": 3.0, "embedded": 0.25, "word": 0.0, "exact": 1.0, "style": 0.0,
                    "parts": 0.0, "qualifier": 0.6, "stem": 2.0, "limit": 20},
    "path_terms": {"stem": 1.0, "folder": 1.5, "mention": 1.0, "symbol": 0.25, "spread": 0.25},
    "coherence": {"weight": 0.4},
    "path_prior": {**_LEXICAL["path_prior"], "test": 0.1},
    "saturation": {"after": 3, "decay": 0.85, "split": 1.0, "keep": 1.0},
    "fitted": "python benchmarks/tune_ranking.py fit --mode hybrid --rounds 1 --seed 0 "
              "--index-root HYBRID_INDEXES --line anyio --line fsspec --line packaging "
              "--line joblib, with DENSE_RETRIEVER_CACHE set to a cache filled by "
              "benchmarks/gpu_vectors.py with the default model's vectors (tune half, 30 "
              "semble repositories, line-level guard anyio, fsspec, packaging, joblib; "
              "objective 0.8975); path_terms.spread 0.25, chosen alone on the tune half, the "
              "rest kept",
}

# Dense: the lexical weights on min-max normalised cosine scores (dividing by the best leaves
# every candidate near 1); min-max was picked over division and over the hybrid weights on the
# 12 small repositories and the line-level sets. No fit of its own.
# The long-query scaling of the lexical weights stays off here (not measured with dense).
_DENSE = {**copy.deepcopy(_LEXICAL), "normalize": {"minmax": True},
          "fitted": "lexical weights with min-max normalisation and without path_terms.long "
          "and coherence.long, not fitted for dense: " + _LEXICAL["fitted"]}
for _stage in ("path_terms", "coherence"):
    _DENSE[_stage].pop("long")

FITTED: dict[str, dict] = {"lexical": _LEXICAL, "dense": _DENSE, "hybrid": _HYBRID}

# Hybrid search over a corpus of documents (no code priors apply): a fusion weight of its
# own for each kind of corpus, each fitted on the split of its kind we may tune on, with the
# default model's vectors. Prose (SciFact train): dense weight 0.4, NDCG@10 0.7231 at the
# earlier shared weight 0.6 -> 0.7392. Code (CoSQA dev: web questions over functions, where
# BM25 trails dense by 0.22): 0.9, 0.5968 at 0.6 -> 0.6169, above its dense side (0.6088),
# which every weight up to 0.7 fell below. Which kind a corpus is, retriever.ranking.context
# decides from a sample of its documents.
DOCUMENTS_FUSION = {
    "method": "score", "symbol": 0.4, "natural": 0.4, "k": 60,
    "fitted": "python benchmarks/fit_document_fusion.py --set scifact:train --vector-cache "
              "CACHE (NDCG@10 0.7392; benchmarks/results/ranking/document-fusion-prose.json)",
}
CODE_DOCUMENTS_FUSION = {
    "method": "score", "symbol": 0.9, "natural": 0.9, "k": 60,
    "fitted": "python benchmarks/fit_document_fusion.py --set cosqa:dev --vector-cache "
              "CACHE (NDCG@10 0.6169; benchmarks/results/ranking/document-fusion-code.json)",
}
# The same corpus kind when the index also holds the fast tier's static vectors (a ``full``
# index: what index_documents builds for a corpus of source code): three sides, the
# lexical one getting the rest (0.1). CoSQA dev 0.6157 (two sides, this grid) -> 0.6229;
# dense alone 0.6088.
CODE_DOCUMENTS_FULL_FUSION = {
    "method": "score", "symbol": 0.7, "natural": 0.7, "fast": 0.2, "k": 60,
    "fitted": "python benchmarks/fit_document_fusion.py --set cosqa:dev --fast --vector-cache "
              "CACHE (benchmarks/results/ranking/document-fusion-code-full.json)",
}

# The ``code-files`` preset: the same, with per-file saturation fitted without the line-level
# guard, for answers wanted one file per slot (what semble's benchmark scores). It costs
# line-level precision (benchmarks/RESULTS.md), which is why it is not the ``code`` default.
FILES_SATURATION = {
    "saturation": {"after": 1, "decay": 0.3, "split": 0.5, "keep": 1.0},
    "fitted": "python benchmarks/tune_ranking.py fit --mode lexical --rounds 2 --seed 0 "
              "--only saturation (tune half, 30 semble repositories, no line-level guard, "
              "from the lexical weights; objective 0.8831)",
}


def weights_for(mode: str, *, files: bool = False) -> dict:
    """The fitted weights for a search mode (``"lexical"``, ``"dense"``, ``"hybrid"``);
    ``files=True``: those of the ``code-files`` preset."""
    weights = FITTED[mode]
    if not files:
        return weights
    return {**weights, **FILES_SATURATION,
            "fitted": f"{FILES_SATURATION['fitted']}; the rest: {weights['fitted']}"}
