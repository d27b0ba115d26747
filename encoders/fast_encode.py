"""The encoding fast path: tokenise ahead, bucket by length, half precision on a GPU.

sentence-transformers' ``encode`` tokenises, pads and copies each batch on the calling thread
between forward passes, so on a GPU the host side is the bottleneck (4,800 code chunks/s
with all-MiniLM-L6-v2 on an H200 whose forward alone runs 76,000 sequences/s). This module
runs the same model modules on the same token ids, and moves the host work out of the way:

- tokenising happens in a producer thread, a window of texts at a time, with an owned copy
  of the Rust tokenizer (``encode_batch`` releases the GIL and runs on every core), while the
  calling thread runs the forward passes of the previous window;
- a window is sorted by token count and cut into batches by a token budget, so batches of
  short texts hold more rows and padding stays near zero; the output keeps the input order;
- batches are filled straight into pinned host memory and copied with ``non_blocking``; the
  attention mask is built on the device from the row lengths;
- ASCII texts skip BERT's normaliser (lowercased in Python instead), which is most of the
  tokeniser's time on code; the ids are the same (:class:`_Tokenise`);
- on CUDA the forward runs in fp16 (``precision="auto"``): with ``half_weights`` on a half
  copy of the model's weights, else under autocast; on the CPU in fp32.

Only a model whose first module is a plain text Transformer with a fast tokenizer, padding
on the right and the usual BERT-style inputs takes this path (:func:`fast_path_supported`);
any other model keeps sentence-transformers' own ``encode``.
"""

from __future__ import annotations

import copy
import json
import queue
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["FastEncoder", "PRECISIONS", "fast_path_supported", "fast_runner", "preferred_batch"]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
# Texts tokenised per producer step: big enough to sort into well-filled buckets, small
# enough that the first forward pass starts soon and a window's ids stay a few MB.
_WINDOW = {"cuda": 16384, "cpu": 2048}
# Padded tokens per forward pass. CPU: what sentence-transformers' default batch of 32 at
# 256 tokens holds, so memory and cache behaviour stay what they were. CUDA: past this the
# H200 gains nothing for a 6-layer MiniLM (see benchmarks/gpu_encode.py).
_BUDGET = {"cuda": 131072, "cpu": 8192}
_MAX_ROWS = {"cuda": 4096, "cpu": 512}
_QUEUED = 6  # batches the producer may run ahead
# Half precision by a half copy of the weights rather than autocast (see benchmarks/gpu_encode.py).
_HALF_WEIGHTS = False
# Texts a caller (the index build) should hand over per call: a whole window on CUDA, so
# the GPU is not starved between calls; on the CPU what the build always handed over.
_PREFERRED_BATCH = {"cuda": _WINDOW["cuda"], "cpu": 256}
# ASCII characters BERT's normaliser (clean_text) deletes: control characters but tab,
# newline and carriage return. A text holding one takes the full tokeniser.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# Runners memoised per loaded model (they hold a copy of its tokenizer); weak, so a model
# dropped from encoders.runtime's cache takes its runners with it.
_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()


def fast_runner(model, *, precision: str = "auto", batch_tokens: int | None = None
                ) -> FastEncoder | None:
    """The :class:`FastEncoder` over ``model`` with these settings, made once per model;
    None when the model cannot take the fast path."""
    with _RUNNERS_LOCK:
        runners = _RUNNERS.setdefault(model, {})
        key = (precision, batch_tokens)
        if key not in runners:
            runners[key] = (FastEncoder(model, precision=precision, batch_tokens=batch_tokens)
                            if fast_path_supported(model) else None)
        return runners[key]


def preferred_batch(device: str | None) -> int:
    """Texts per encode call that keep the fast path busy on ``device`` ("cuda", "cpu"...)."""
    return _PREFERRED_BATCH["cuda" if str(device or "cpu").startswith("cuda") else "cpu"]


def fast_path_supported(model) -> bool:
    """True when ``model`` (a SentenceTransformer) can take :class:`FastEncoder`'s path and
    give the vectors its own ``encode`` gives."""
    try:
        first = model[0]
    except (TypeError, IndexError, KeyError):
        return False
    tokenizer = getattr(first, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "padding_side", "right") != "right":
        return False
    if getattr(model, "default_prompt_name", None):
        return False  # encode would put a prompt in front that this path would not
    modalities = getattr(first, "modality_config", None)
    if modalities is not None and (set(modalities) - {"text"}):
        return False  # chat templates, images...: only plain text is handled here
    names = set(getattr(tokenizer, "model_input_names", ()) or ())
    if not names or not names <= _INPUTS or "input_ids" not in names:
        return False
    return getattr(tokenizer, "pad_token_id", None) is not None


class FastEncoder:
    """Encodes texts with a loaded SentenceTransformer through the fast path.

    Args:
        model: a SentenceTransformer for which :func:`fast_path_supported` is True.
        precision: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"`` or
            ``"bf16"``; half precision is used on CUDA only.
        batch_tokens: padded tokens per forward pass; None picks by device.
        window: texts tokenised per producer step; None picks by device.
        half_weights: on CUDA in half precision, run a half copy of the model's weights
            instead of autocast (fewer casts per layer); None: the measured default.
    """

    def __init__(self, model, *, precision: str = "auto", batch_tokens: int | None = None,
                 window: int | None = None, half_weights: bool | None = None) -> None:
        import torch

        self.model = model
        self.device = torch.device(model.device)
        kind = "cuda" if self.device.type == "cuda" else "cpu"
        self.window = window or _WINDOW[kind]
        self.batch_tokens = batch_tokens or _BUDGET[kind]
        self.max_rows = _MAX_ROWS[kind]
        self.dtype = _autocast_dtype(precision, kind)
        tokenizer = model[0].tokenizer
        # An owned copy: the HF wrapper resets truncation and padding on the shared backend
        # at every call, so using that one from a second thread would race with it.
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.max_length = int(model.max_seq_length)
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()
        self.tokenise = _Tokenise(self.tokenizer)
        self.pad_id = int(tokenizer.pad_token_id)
        self.inputs = set(tokenizer.model_input_names)
        # Single-sequence type ids come from the post-processor's template and are the same
        # for every text; all zeros (BERT) lets the device make them instead of the host.
        probe = self.tokenizer.encode("a")
        self.zero_types = not any(probe.type_ids)
        # encode cuts to the model's truncate_dim before normalising; so does this path.
        self.truncate_dim = getattr(model, "truncate_dim", None)
        self.forward_model = model
        if self.dtype is not None and (_HALF_WEIGHTS if half_weights is None else half_weights):
            # A copy: the loaded model is shared (encoders.runtime) and stays float32.
            self.forward_model = copy.deepcopy(model).to(self.dtype)
            self.dtype = None  # the copy computes in half precision without autocast

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None
               ) -> np.ndarray:
        """``(n, dim)`` float32 unit rows, in the order of ``texts``."""
        import torch

        texts = list(texts)
        n = len(texts)
        if self.forward_model.training:
            self.forward_model.eval()  # as encode does: no dropout
        results: torch.Tensor | None = None
        with torch.inference_mode(), self._autocast():
            for window_start, rows, batch, count in self._produced(texts):
                if batch is None:  # a window finished
                    if progress is not None:
                        progress(count)
                    continue
                vectors = self._forward(batch).float()
                if self.truncate_dim is not None:
                    vectors = vectors[:, : self.truncate_dim]
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                if results is None:
                    results = torch.empty((n, vectors.shape[1]), dtype=torch.float32,
                                          device=vectors.device)
                index = torch.from_numpy(rows + window_start)
                results[index.to(vectors.device, non_blocking=True)] = vectors
        if results is None:
            return np.zeros((0, 0), dtype=np.float32)
        return np.ascontiguousarray(results.cpu().numpy(), dtype=np.float32)

    def _autocast(self):
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def _forward(self, batch: dict):
        import torch

        cuda = self.device.type == "cuda"
        ids = batch["input_ids"].to(self.device, non_blocking=cuda)
        lengths = batch["lengths"].to(self.device, non_blocking=cuda)
        positions = torch.arange(ids.shape[1], device=self.device)
        features = {"input_ids": ids}
        if "attention_mask" in self.inputs:
            features["attention_mask"] = (positions[None, :] < lengths[:, None]).to(ids.dtype)
        if "token_type_ids" in self.inputs:
            types = batch.get("token_type_ids")
            features["token_type_ids"] = (torch.zeros_like(ids) if types is None
                                          else types.to(self.device, non_blocking=cuda))
        return self.forward_model(features)["sentence_embedding"]

    def _produced(self, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
        """Batches from a producer thread: ``(window_start, rows, batch, 0)`` per batch and
        ``(window_start, empty, None, window_size)`` after each window."""
        if len(texts) <= self.window:  # one window: no thread to start or join
            yield from self._batches(texts)
            return
        handoff: queue.Queue = queue.Queue(maxsize=_QUEUED)
        stop = threading.Event()
        failure: list[BaseException] = []

        def put(item) -> bool:
            # A bounded wait, so a consumer that stopped early (an error in a forward pass)
            # never leaves this thread blocked on a full queue.
            while not stop.is_set():
                try:
                    handoff.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for item in self._batches(texts):
                    if not put(item):
                        return
            except BaseException as exc:  # re-raised on the calling thread
                failure.append(exc)
            put(None)

        thread = threading.Thread(target=produce, name="fast-encode-tokenise", daemon=True)
        thread.start()
        try:
            while True:
                item = handoff.get()
                if item is None:
                    break
                yield item
        finally:
            stop.set()
            thread.join()
        if failure:
            raise failure[0]

    def _batches(self, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
        import torch

        pin = self.device.type == "cuda"
        tokenise = self.tokenise
        starts = range(0, len(texts), self.window)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fast-encode-ids") as pool:
            # The next window is tokenised (GIL released, every core) while this one is
            # padded into batches (Python, holding the GIL).
            ahead = pool.submit(tokenise, texts[: self.window])
            for start in starts:
                encodings = ahead.result()
                following = start + self.window
                if following < len(texts):
                    ahead = pool.submit(tokenise, texts[following : following + self.window])
                yield from self._window_batches(start, encodings, pin, torch)

    def _window_batches(self, start: int, encodings: list, pin: bool, torch
                        ) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        # Longest first: the largest activations are allocated once, at the start.
        order = np.argsort(-lengths, kind="stable")
        for rows in _bucket(lengths[order], self.batch_tokens, self.max_rows):
            picked = order[rows]
            width = int(lengths[picked[0]])
            ids = torch.full((len(picked), width), self.pad_id, dtype=torch.int64,
                             pin_memory=pin)
            view = ids.numpy()
            types = None
            if not self.zero_types:
                types = torch.zeros((len(picked), width), dtype=torch.int64, pin_memory=pin)
            for i, row in enumerate(picked):
                encoding = encodings[row]
                view[i, : len(encoding)] = encoding.ids
                if types is not None:
                    types.numpy()[i, : len(encoding)] = encoding.type_ids
            batch = {"input_ids": ids, "lengths": torch.from_numpy(lengths[picked])}
            if pin:
                batch["lengths"] = batch["lengths"].pin_memory()
            if types is not None:
                batch["token_type_ids"] = types
            yield start, picked, batch, 0
        yield start, order[:0], None, len(encodings)


class _Tokenise:
    """``encode_batch`` of a BERT tokenizer, faster on ASCII texts, with the same ids.

    BERT's normaliser (clean text, lowercase, strip accents, space out CJK) tracks the
    alignment of every character and costs about a third of the tokeniser's time on code.
    On an ASCII text without control characters it only lowercases and turns tabs and
    line breaks into spaces, which the BERT pre-tokeniser splits on anyway; so such texts
    are lowercased here (``str.lower`` equals the normaliser's on ASCII) and go through a
    copy of the tokenizer without the normaliser. Any other text takes the full one, and
    so does a text holding an added token's text in any case (``[CLS]``, ``[MASK]`` in a
    docstring): those match before normalising, and lowercasing would break the match.
    """

    def __init__(self, tokenizer) -> None:
        from tokenizers import Tokenizer

        self.full = tokenizer
        self.plain = None
        self.lowercase = False
        described = json.loads(tokenizer.to_str())
        self.added = tuple({token["content"].lower() for token in described.get("added_tokens", ())
                            if token.get("content")})
        normaliser = described.get("normalizer") or {}
        splitter = described.get("pre_tokenizer") or {}
        if (normaliser.get("type") == "BertNormalizer"
                and splitter.get("type") == "BertPreTokenizer"):
            self.lowercase = bool(normaliser.get("lowercase", True))
            self.plain = Tokenizer.from_str(tokenizer.to_str())
            self.plain.normalizer = None

    def __call__(self, texts: list[str]) -> list:
        # encode_batch_fast skips the character offsets this path never reads (same ids).
        full = getattr(self.full, "encode_batch_fast", self.full.encode_batch)
        if self.plain is None:
            return full(texts)
        plain_rows, chosen = [], []
        for i, text in enumerate(texts):
            if text.isascii() and _CONTROL.search(text) is None:
                lowered = text.lower()
                if not any(token in lowered for token in self.added):
                    plain_rows.append(i)
                    chosen.append(lowered if self.lowercase else text)
        if not plain_rows:
            return full(texts)
        plain = getattr(self.plain, "encode_batch_fast", self.plain.encode_batch)
        encodings = plain(chosen)
        if len(plain_rows) == len(texts):
            return encodings
        merged: list = [None] * len(texts)
        for i, encoding in zip(plain_rows, encodings, strict=True):
            merged[i] = encoding
        others = [i for i, encoding in enumerate(merged) if encoding is None]
        for i, encoding in zip(others, full([texts[i] for i in others]), strict=True):
            merged[i] = encoding
        return merged


def _bucket(sorted_lengths: np.ndarray, budget: int, max_rows: int) -> Iterator[slice]:
    """Slices of rows (lengths sorted longest first) whose padded size, rows times the
    first row's length, stays within ``budget`` tokens and ``max_rows`` rows."""
    start, n = 0, len(sorted_lengths)
    while start < n:
        width = max(int(sorted_lengths[start]), 1)
        stop = min(n, start + max(1, min(max_rows, budget // width)))
        yield slice(start, stop)
        start = stop


def _autocast_dtype(precision: str, kind: str):
    import torch

    if precision not in PRECISIONS:
        raise ValueError(precision)  # checked by the encoder's constructor before this
    if kind != "cuda" or precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16
