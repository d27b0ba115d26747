"""Retrieval-oriented masked auto-encoding pretraining (RetroMAE, Xiao et al. 2022).

Over unlabeled texts (code chunks), the encoder reads a lightly masked copy (``encoder_mask``,
about 30%) and is trained with masked language modelling; its sentence vector (the model's
own pooling) alone must then let a one-layer decoder rebuild the whole text under heavy
masking (``decoder_mask``, about 50%). With enhanced decoding, every position's query is the
sentence vector plus that position, and it attends to the sentence vector and a random
sample of the other tokens, never to itself: what it must reconstruct has to come through
the sentence vector. The decoder and the language-model head are training scaffolding; only
the encoder is saved. Fine-tune the result with the contrastive recipe afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from encoders.sentence import BASE_MODEL
from encoders.train.common import (
    Job,
    Progress,
    TrainResult,
    TrainSettings,
    fit,
    load_base,
    output_width,
    prepare_out,
)
from encoders.train.contrastive import dev_metrics
from encoders.train.inputs import load_dev, load_texts, rows_hash
from retriever.errors import InputError

__all__ = ["EnhancedDecoder", "RetroMAELoss", "train_mae"]


class EnhancedDecoder(nn.Module):
    """One transformer layer that rebuilds a text from its sentence vector (two-stream).

    Args:
        hidden: width of the encoder's token embeddings.
        heads: attention heads.
        intermediate: width of the feed-forward block.
        positions: the longest text, in tokens.
    """

    def __init__(self, hidden: int, heads: int, intermediate: int, positions: int) -> None:
        super().__init__()
        self.heads = heads
        self.positions = nn.Embedding(positions + 1, hidden)  # 0 is the sentence vector's slot
        self.norm_query = nn.LayerNorm(hidden)
        self.norm_context = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, intermediate), nn.GELU(),
                                 nn.Linear(intermediate, hidden))

    def forward(self, sentence: torch.Tensor, tokens: torch.Tensor, attention: torch.Tensor,
                mask_rate: float) -> torch.Tensor:
        """Hidden states ``(b, t, hidden)`` from which to predict every token.

        Args:
            sentence: ``(b, hidden)`` sentence vectors.
            tokens: ``(b, t, hidden)`` embeddings of the unmasked tokens.
            attention: ``(b, t)`` bool, True at real (not padding) tokens.
            mask_rate: share of the other tokens each position may not see.
        """
        batch, length, _ = tokens.shape
        device = tokens.device
        place = self.positions(torch.arange(1, length + 1, device=device))
        query = sentence[:, None, :] + place[None]
        context = torch.cat([(sentence + self.positions.weight[0])[:, None, :],
                             tokens + place[None]], dim=1)
        visible = (torch.rand(batch, length, length, device=device) >= mask_rate)
        visible &= attention[:, None, :]
        visible &= ~torch.eye(length, dtype=torch.bool, device=device)[None]
        allowed = torch.cat([torch.ones(batch, length, 1, dtype=torch.bool, device=device),
                             visible], dim=2)
        context = self.norm_context(context)
        seen, _ = self.attention(self.norm_query(query), context, context,
                                 attn_mask=~allowed.repeat_interleave(self.heads, dim=0),
                                 need_weights=False)
        hidden = query + seen
        return hidden + self.ffn(self.norm_ffn(hidden))


class RetroMAELoss(nn.Module):
    """Encoder MLM plus enhanced-decoding reconstruction, over one column of texts.

    The language-model head shares the encoder's word embeddings as its output matrix (as BERT
    ties them), so the scaffolding adds a decoder layer, a transform and a bias, nothing of
    vocabulary size but the bias.

    Args:
        model: the SentenceTransformer (a ``Transformer`` first module with a mask token).
        encoder_mask: share of the encoder's tokens masked.
        decoder_mask: share of the other tokens hidden from each decoder position.
    """

    def __init__(self, model, *, encoder_mask: float = 0.3, decoder_mask: float = 0.5) -> None:
        super().__init__()
        for name, value in (("encoder_mask", encoder_mask), ("decoder_mask", decoder_mask)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < 1):
                raise InputError(f"{name} must be a share between 0 and 1, not {value!r}.")
        transformer = model[0]
        auto = getattr(transformer, "auto_model", None)
        tokenizer = getattr(transformer, "tokenizer", None)
        if auto is None or getattr(tokenizer, "mask_token_id", None) is None:
            raise InputError("MAE pretraining needs a transformer base model whose tokenizer "
                             "has a mask token (BERT-like); this base has none.")
        config = auto.config
        hidden = config.hidden_size
        self.model = model
        self.encoder_mask, self.decoder_mask = float(encoder_mask), float(decoder_mask)
        self.mask_id = int(tokenizer.mask_token_id)
        self.register_buffer("special", torch.tensor(sorted(set(tokenizer.all_special_ids))),
                             persistent=False)
        width = output_width(model)
        self.project = nn.Identity() if width == hidden else nn.Linear(width, hidden)
        self.decoder = EnhancedDecoder(hidden, config.num_attention_heads,
                                       config.intermediate_size, config.max_position_embeddings)
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(),
                                       nn.LayerNorm(hidden))
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def _word_embeddings(self) -> nn.Embedding:
        return self.model[0].auto_model.get_input_embeddings()

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(hidden), self._word_embeddings().weight, self.bias)

    def forward(self, features: list[dict], labels=None) -> torch.Tensor:
        feature = features[0]
        ids, attention = feature["input_ids"], feature["attention_mask"].bool()
        usable = attention & ~torch.isin(ids, self.special.to(ids.device))
        masked = usable & (torch.rand(ids.shape, device=ids.device) < self.encoder_mask)
        encoded = self.model({**feature, "input_ids": ids.masked_fill(masked, self.mask_id)})
        tokens = encoded["token_embeddings"]
        encoder_loss = (F.cross_entropy(self._logits(tokens[masked]), ids[masked])
                        if masked.any() else tokens.sum() * 0.0)
        sentence = self.project(encoded["sentence_embedding"])
        rebuilt = self.decoder(sentence, self._word_embeddings()(ids), attention,
                               self.decoder_mask)
        decoder_loss = F.cross_entropy(self._logits(rebuilt[usable]), ids[usable])
        return encoder_loss + decoder_loss


def train_mae(
    data: Iterable | str | Path,
    *,
    out: str | Path,
    base: str = BASE_MODEL,
    settings: TrainSettings | None = None,
    encoder_mask: float = 0.3,
    decoder_mask: float = 0.5,
    dev: Iterable | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: str | None = None,
) -> TrainResult:
    """Pretrain ``base`` as a RetroMAE encoder over raw texts; only the encoder is saved.

    Args:
        data: texts (code chunks), or a texts JSONL file or folder (:mod:`encoders.train.inputs`).
        out, base, settings, progress, resume, command: as for
            :func:`encoders.train.contrastive.train_contrastive`.
        encoder_mask, decoder_mask: see :class:`RetroMAELoss`.
        dev: held-out ``(query, positive)`` pairs (or a pairs file) to report retrieval
            metrics on.

    Returns:
        The run's result.
    """
    settings = settings or TrainSettings()
    texts = load_texts(data)
    dev_rows = load_dev(dev)
    out = prepare_out(Path(out), resume)
    model, base_info = load_base(base, settings)
    loss = RetroMAELoss(model, encoder_mask=encoder_mask,
                        decoder_mask=decoder_mask).to(model.device)
    options = {"encoder_mask": encoder_mask, "decoder_mask": decoder_mask}
    job = Job(
        recipe="mae", model=model, loss=loss, rows=len(texts),
        columns=lambda ids: [[texts[i] for i in ids]],
        identity={"data": {"hash": rows_hash(texts), "texts": len(texts),
                           "dev_hash": rows_hash(dev_rows) if dev_rows else None},
                  "options": options},
        manifest={"mae": {**options, "decoder": "one layer, enhanced decoding; not saved"}},
        dev=(lambda m: dev_metrics(m, dev_rows)) if dev_rows else None,
    )
    return fit(job, out=out, settings=settings, base=base_info, progress=progress,
               resume=resume, command=command)
