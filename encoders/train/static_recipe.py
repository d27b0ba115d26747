"""Several static-model variants from one teacher pass: the recipe of :mod:`.distill`, batched.

The teacher's work (its embeddings of every training text, its vectors of every token) is the
expensive part and is the same for every variant over one vocabulary, so it is done once and
each variant (recipe settings, a vocabulary) trains its own table from it. Distillation texts
are teacher-sized windows of the mined chunks and codes (:mod:`.static_data`) plus the pair
queries; the contrastive pairs keep the whole code, as the index embeds it.

Needs torch and transformers (the teacher); the folders it writes load in
:class:`encoders.static.StaticEncoder`, which needs neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from encoders.train.distill import (
    Recipe,
    Teacher,
    distil_table,
    pad_ids,
    retrieval_metrics,
    save_model2vec,
    train_table,
)
from encoders.train.static_data import teacher_windows
from encoders.train.vocab import Vocabulary, token_counts
from retriever.errors import InputError

__all__ = ["StaticData", "run_variants", "teacher_dev_ndcg"]

# Token widths of the student's inputs: a query is short, a window is at most the teacher's
# length (the student's vocabulary spells a text in no more pieces than the teacher's), and a
# code is cut where the index's static encoder cuts it.
_QUERY_TOKENS = 64
_CODE_TOKENS = 512


@dataclass
class StaticData:
    """The training data of one run.

    Attributes:
        train: (query, code, negative) triples; ``negative`` is the index in ``train`` of the
            pair whose code is this pair's mined hard negative, or -1.
        dev: held-out (query, code) pairs; each query is ranked against all dev codes.
        chunks: code chunks for distillation only.
        data_hash: the hash of the dataset they were read from, for the model card.
    """

    train: list[tuple[str, str, int]]
    dev: list[tuple[str, str]]
    chunks: list[str]
    data_hash: str = ""


def teacher_dev_ndcg(teacher: Teacher, dev: Sequence[tuple[str, str]]) -> float | None:
    """The teacher's nDCG@10 on held-out (query, code) pairs, each query against every code;
    None without pairs."""
    import torch

    if not dev:
        return None
    queries = teacher.embed([q for q, _ in dev])
    scores = queries @ teacher.embed([c for _, c in dev]).T
    rank = (scores > scores.diagonal()[:, None]).sum(1)
    gains = torch.where(rank < 10, 1 / torch.log2(rank.float() + 2),
                        torch.zeros_like(queries[:, 0]))
    return round(float(gains.mean()), 4)


def run_variants(
    teacher_dir: Path,
    vocabularies: dict[str, Vocabulary],
    data: StaticData,
    variants: Sequence[dict],
    *,
    out: Path,
    device: str = "cpu",
    max_length: int = 256,
    max_windows: int = 4,
    budget_s: float | None = None,
    teacher_info: dict | None = None,
    command: str = "",
    log: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train each variant and save it as a Model2Vec folder ``out/<name>``.

    Args:
        teacher_dir: a BERT folder (mean pooling, unit vectors: a sentence-transformers model).
        vocabularies: name -> vocabulary (:func:`encoders.train.vocab.build_vocabulary`).
        data: the pairs and chunks.
        variants: dicts of ``name``, optional ``vocab`` (a key of ``vocabularies``; the first
            when absent) and :class:`~encoders.train.distill.Recipe` fields.
        out: the folder the models are written under.
        device: torch device of the teacher and the training.
        max_length: the teacher's token limit (windows hold two fewer: [CLS] and [SEP]).
        max_windows: windows kept a text.
        budget_s: seconds after which no further variant starts (the first always runs).
        teacher_info: what the model card says of the teacher (name, fingerprint).
        command: the command line, for the model card.
        log: called with one dict per step and epoch.

    Returns:
        One summary per trained variant: name, folder, best epoch's metrics, seconds.

    Raises:
        InputError: a variant without a name, naming an unknown vocabulary, or a field the
            recipe lacks.
    """
    import torch
    from tokenizers import Tokenizer

    started = time.monotonic()
    say = log or (lambda row: None)
    checked = []
    for variant in variants:
        settings = dict(variant)
        name = settings.pop("name", None)
        vocab = settings.pop("vocab", next(iter(vocabularies)))
        if not isinstance(name, str) or not name or vocab not in vocabularies:
            raise InputError(f"Variant {variant!r}: it needs a 'name' and a 'vocab' among "
                             f"{sorted(vocabularies)}.")
        unknown = set(settings) - set(Recipe.__dataclass_fields__)
        if unknown:
            raise InputError(f"Variant {name!r}: unknown recipe fields {sorted(unknown)}; "
                             f"known: {sorted(Recipe.__dataclass_fields__)}.")
        checked.append((name, vocab, settings))

    teacher = Teacher(teacher_dir, device=device, max_length=max_length)
    plain = Tokenizer.from_file(str(Path(teacher_dir) / "tokenizer.json"))
    plain.no_padding()
    plain.no_truncation()
    codes = [code for _, code, _ in data.train]
    queries = [query for query, _, _ in data.train]
    texts = teacher_windows(data.chunks + codes, plain, width=max_length - 2,
                            max_windows=max_windows) + queries
    targets = teacher.embed(texts)
    teacher_ndcg = teacher_dev_ndcg(teacher, data.dev)
    say({"step": "teacher", "texts": len(texts), "dev_ndcg@10": teacher_ndcg,
         "t": round(time.monotonic() - started, 1)})
    negatives = torch.tensor([n for _, _, n in data.train], dtype=torch.long)

    prepared: dict[str, tuple] = {}
    results = []
    for name, vocab_name, settings in checked:
        if results and budget_s is not None and time.monotonic() - started > budget_s:
            say({"step": "skipped", "variant": name, "reason": "time budget"})
            continue
        if vocab_name not in prepared:
            prepared[vocab_name] = _prepare(teacher, vocabularies[vocab_name], data, texts,
                                            codes, queries, device, max_length)
            say({"step": "vocabulary", "vocab": vocab_name,
                 "t": round(time.monotonic() - started, 1)})
        unk, vectors, counts, text_ids, query_ids, code_ids, dev_ids = prepared[vocab_name]
        recipe = Recipe(**settings)
        torch.manual_seed(recipe.seed)
        begun = time.monotonic()
        table, head = distil_table(vectors, counts, recipe)
        best, history = train_table(
            table, head, pad=unk, texts=text_ids, targets=targets, queries=query_ids,
            codes=code_ids, recipe=recipe, negatives=negatives.to(code_ids.device),
            dev=(lambda t, d=dev_ids, u=unk: retrieval_metrics(t, u, *d)) if data.dev else None,
            log=lambda row, name=name: say({"variant": name, **row}),
        )
        vocabulary = vocabularies[vocab_name]
        training = {
            "recipe": {**recipe.__dict__},
            "seed": recipe.seed,
            "data": {"hash": data.data_hash, "pairs": {"train": len(data.train),
                                                       "dev": len(data.dev)},
                     "chunks": len(data.chunks), "distillation_texts": len(texts),
                     "windows": {"tokens": max_length - 2, "max_a_text": max_windows}},
            "teacher": {**(teacher_info or {}), "dev_ndcg@10": teacher_ndcg},
            "vocabulary": {"name": vocab_name, **vocabulary.card()},
            "history": history,
            "command": command,
        }
        save_model2vec(out / name, best, vocabulary, training)
        best_row = max(history, key=lambda row: row.get("dev_ndcg@10", -1))
        results.append({"name": name, "folder": str(out / name), "best": best_row,
                        "seconds": round(time.monotonic() - begun, 1)})
        say({"step": "saved", **results[-1]})
    return results


def _prepare(teacher: Teacher, vocabulary: Vocabulary, data: StaticData, texts: list[str],
             codes: list[str], queries: list[str], device: str, max_length: int) -> tuple:
    """The student's side of one vocabulary: ids of every text and the initial token vectors."""
    from tokenizers import Tokenizer

    student = Tokenizer.from_str(json.dumps(vocabulary.tokenizer))
    student.no_padding()
    student.no_truncation()
    unk = student.token_to_id(vocabulary.tokenizer["model"]["unk_token"])

    def ids(batch: list[str], width: int):
        rows = [e.ids for e in student.encode_batch(batch, add_special_tokens=False)]
        return pad_ids(rows, unk, width).to(device)

    counts = token_counts(student, data.chunks + codes, len(vocabulary))
    vectors = teacher.token_vectors(vocabulary.sources)
    dev_ids = (ids([q for q, _ in data.dev], _QUERY_TOKENS),
               ids([c for _, c in data.dev], _CODE_TOKENS))
    return (unk, vectors, counts, ids(texts, max_length), ids(queries, _QUERY_TOKENS),
            ids(codes, _CODE_TOKENS), dev_ids)
