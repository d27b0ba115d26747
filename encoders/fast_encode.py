"""The encoding fast path: tokenise ahead, bucket by length, half precision on a GPU.

sentence-transformers' ``encode`` tokenises, pads and copies each batch on the calling thread
between forward passes, so on a GPU the host side is the bottleneck (1,600 code chunks/s
with a MiniLM on an H200 whose forward alone runs near 40,000). This module runs the same
model modules on the same token ids, and moves the host work out of the way:

- a window of texts is tokenised while the previous one runs, on a thread (the Rust
  tokenizer releases the GIL and runs on every core) or, asked for, in worker processes
  (:mod:`encoders._tokenise_pool`); either way into flat id arrays
  (:class:`encoders._tokenise.Tokens`) with the tokenizer's ids; on the CPU and in workers
  ASCII code takes a word-cached WordPiece path, five times the Rust tokenizer's rate on
  one core (:class:`encoders._tokenise.Tokenise`);
- a window is sorted by token count and cut into batches by a token budget, so batches of
  short texts hold more rows and padding stays near zero; the output keeps the input order;
- each batch is gathered from the flat ids with numpy straight into pinned host memory and
  copied with ``non_blocking``; the attention mask is built on the device from the lengths;
- on CUDA the forward runs in fp16 (``precision="auto"``): under autocast, or on a half
  copy of the model's weights (``half_weights``); on the CPU in fp32; optionally under
  ``torch.compile``;
- on CUDA, by default, a call of thousands of texts leaves this process no per-text work:
  worker processes tokenise and pad whole batches into shared memory
  (:mod:`encoders._batch_pool`), and each batch is one replay of a CUDA graph of a fused
  BERT forward (:mod:`encoders._bert_forward`, :mod:`encoders._pooled_encode`).

Only a model whose first module is a plain text Transformer with a fast tokenizer, padding
on the right and the usual BERT-style inputs takes this path (:func:`fast_path_supported`);
any other model keeps sentence-transformers' own ``encode``.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from encoders._thread_batches import batches, produced
from encoders._tokenise import Tokenise
from encoders._tokenise_pool import cpu_count

__all__ = ["FastEncoder", "FORWARDS", "PRECISIONS", "fast_path_supported", "fast_runner",
           "preferred_batch"]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# How a batch goes through the model: its own modules; BertForward (encoders._bert_forward:
# the same computation in a few fused calls, for a BERT with mean or CLS pooling); that one
# recorded as a CUDA graph per batch shape (needs batch_workers, whose batches come in a
# fixed set of shapes; CUDA only, else "bert").
FORWARDS = ("auto", "module", "bert", "graphs")
_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
# Texts tokenised per producer step: big enough to sort into well-filled buckets, small
# enough that the first forward pass starts soon and a window's ids stay a few MB.
_WINDOW = {"cuda": 16384, "cpu": 2048}
# Padded tokens per forward pass. CPU: what sentence-transformers' default batch of 32 at
# 256 tokens holds, so memory and cache behaviour stay what they were. CUDA: past this the
# H200 gains nothing for a 6-layer MiniLM (see benchmarks/gpu_encode.py).
_BUDGET = {"cuda": 131072, "cpu": 8192}
_MAX_ROWS = {"cuda": 4096, "cpu": 512}
# Half precision by a half copy of the weights rather than autocast (see benchmarks/gpu_encode.py).
_HALF_WEIGHTS = False
# Texts a caller (the index build) should hand over per call: a whole window on CUDA, so
# the GPU is not starved between calls; on the CPU what the build always handed over.
_PREFERRED_BATCH = {"cuda": _WINDOW["cuda"], "cpu": 256}
# Where ids are made, by default: in this process, on a thread. Measured on the H200 (16
# cores, 100,000 mined chunks, benchmarks/results/scale/gpu_encode_h200_pool.json): worker
# processes with the word path tokenise and pad 29,200 texts/s alone against 16,700 for the
# Rust tokenizer on a thread, but end to end they gave 10,800-12,000 chunks/s against
# 13,300: the threads that feed and read the workers hold the GIL that every torch call of
# the forward pass gives up and takes back. So workers are asked for by number.
_TOKENISE_WORKERS = 0
# Processes that tokenise and pad whole batches into shared memory (encoders._batch_pool),
# and the forward, by default. On CUDA: one worker per core but one, the fused BERT forward
# in CUDA graphs: measured on the H200 (16 cores, 100,000 mined chunks, code-minilm-v1,
# benchmarks/results/scale/gpu_encode_h200_shm.json) 31,300 chunks/s end to end, 0.78 of
# its forward alone (40,000), against 10,700 for the thread path in the same lease; min
# cosine to encode fp32 0.9999994 (36,000 with the "fold" kernels below). Since the workers'
# rows fill shared batches (encoders._batch_pool) and texts reach shared memory in runs:
# 44,600 chunks/s against 35,400 for the earlier pool in the same call, 0.88 of the forward
# alone (benchmarks/results/scale/gpu_encode_h200_fill.json). The CPU keeps the thread path
# and the model's modules.
_BATCH_WORKERS = {"cuda": -1, "cpu": 0}
_FORWARD = {"cuda": "graphs", "cpu": "module"}
# How the fused BERT forward does its element-wise work (encoders._bert_forward.KERNELS). On
# CUDA "fold" (GELU in the up-projection's epilogue, residual adds in the matmuls): measured on
# the H200 (100,000 mined chunks, benchmarks/results/scale/gpu_encode_h200_kernels.json)
# forward 47,100 chunks/s against 40,200 eager, end to end 36,000 against 30,900 in the same
# call; min cosine to encode fp32 0.9999958 (tanh GELU). Inductor was slower (37,300).
_KERNELS = {"cuda": "fold", "cpu": "eager"}
# How much lower the batch workers run than the encoding process (os.nice). With one worker
# per core but one, the parent shares cores with busy workers; lowered, they never delay its
# next graph launch. Not measured yet: 0 keeps the measured behaviour.
_WORKER_NICE = 0
# A call with fewer texts (a query, a small update) takes the thread path when the batch
# workers are the default, not asked for: it would wait on starting them (and, the first
# time, on recording the graphs: about 10 s on the H200) for little to encode.
_POOL_MIN_TEXTS = 4096
# Width buckets of the batch workers' batches: multiples of this (tensor-core friendly, and
# few enough shapes to record a graph of each).
_WIDTH_STEP = 32


# Runners memoised per loaded model (they hold a copy of its tokenizer); weak, so a model
# dropped from encoders.runtime's cache takes its runners with it.
_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()


def fast_runner(model, *, precision: str = "auto", batch_tokens: int | None = None,
                batch_workers: int | None = None) -> FastEncoder | None:
    """The :class:`FastEncoder` over ``model`` with these settings, made once per model and
    settings (two encoders that differ only in ``batch_workers`` get runners of their own);
    None when the model cannot take the fast path."""
    with _RUNNERS_LOCK:
        runners = _RUNNERS.setdefault(model, {})
        key = (precision, batch_tokens, batch_workers)
        if key not in runners:
            runners[key] = (FastEncoder(model, precision=precision, batch_tokens=batch_tokens,
                                        batch_workers=batch_workers)
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
        tokenise_workers: tokenising processes (:mod:`encoders._tokenise_pool`); 0
            tokenises on a thread of this process; None: the measured default (0).
        words: let ASCII texts take the word-cached WordPiece path (same ids); None: in
            worker processes (either kind) and on the CPU, not on a CUDA thread (it is
            Python, holding the GIL the forward pass needs; the Rust tokenizer lets it go).
        compile: run the forward under ``torch.compile`` (dynamic shapes; eager if
            compiling fails). The first call pays the compile. Module forward only.
        batch_workers: processes that tokenise and pad whole batches into shared memory
            (:mod:`encoders._batch_pool`; the parent does no per-text work); -1: one per
            core but one; 0: none; None: the measured default (on CUDA -1, for calls of
            at least 4,096 texts). Models whose type ids are all zero only (BERT's are);
            others keep the thread path.
        forward: one of :data:`FORWARDS`; ``"bert"`` and ``"graphs"`` where
            :func:`encoders._bert_forward.bert_forward_supported` holds, else ``"module"``.
        kernels: the fused forward's element-wise kernels, one of
            :data:`encoders._bert_forward.KERNELS`; None: the measured default.
        worker_nice: how much lower the batch workers run than this process (``os.nice``);
            None: the measured default.
    """

    def __init__(self, model, *, precision: str = "auto", batch_tokens: int | None = None,
                 window: int | None = None, half_weights: bool | None = None,
                 tokenise_workers: int | None = None, words: bool | None = None,
                 compile: bool = False, batch_workers: int | None = None,
                 forward: str = "auto", kernels: str | None = None,
                 worker_nice: int | None = None) -> None:
        import torch

        from encoders._bert_forward import bert_forward_supported

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
        workers = _TOKENISE_WORKERS if tokenise_workers is None else tokenise_workers
        self.tokenise_workers = max(0, int(workers))
        self.words = (self.tokenise_workers > 0 or kind == "cpu") if words is None else words
        self.tokenise = Tokenise(self.tokenizer, words=self.words)
        self._pool = None  # encoders._tokenise_pool.TokenisePool, made on first use
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
        self.compile = compile
        self._call = self.forward_model
        self._compiled = False
        if forward not in FORWARDS:
            raise ValueError(forward)  # checked by the encoder's constructor before this
        if forward == "auto":  # compile applies to the model's modules
            forward = "module" if compile else _FORWARD[kind]
        if forward != "module" and not bert_forward_supported(model):
            forward = "module"
        if batch_workers is None and self.tokenise_workers > 0:
            batch_workers = 0  # tokenising processes asked for: those, not batch workers
        workers = _BATCH_WORKERS[kind] if batch_workers is None else int(batch_workers)
        self.batch_workers = (max(1, cpu_count() - 1) if workers < 0 else workers
                              ) if self.zero_types else 0
        self.pool_asked = batch_workers is not None and self.batch_workers > 0
        self.worker_nice = _WORKER_NICE if worker_nice is None else int(worker_nice)
        self.pool_min_texts = 1 if self.pool_asked else _POOL_MIN_TEXTS
        if words is None and self.batch_workers:
            self.words = True  # Python in worker processes, as with tokenise_workers
        if forward == "graphs" and (kind != "cuda" or not self.batch_workers):
            forward = "bert"
        self.forward = forward
        self.width_step = _WIDTH_STEP
        self._bert = None
        if forward != "module":
            from encoders._bert_forward import BertForward

            half = _autocast_dtype(precision, kind)
            self._bert = BertForward(model, dtype=half or torch.float32,
                                     truncate_dim=self.truncate_dim,
                                     kernels=kernels or _KERNELS[kind])
        self._pooled = None  # encoders._pooled_encode.PooledPath, made on first use

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None
               ) -> np.ndarray:
        """``(n, dim)`` float32 unit rows, in the order of ``texts``."""
        import torch

        texts = list(texts)
        n = len(texts)
        if self.forward_model.training:
            self.forward_model.eval()  # as encode does: no dropout
        if self.batch_workers and n >= self.pool_min_texts:
            if self._pooled is None:
                from encoders._pooled_encode import PooledPath

                self._pooled = PooledPath(self)
            vectors = self._pooled.encode(texts, progress)
            if vectors is not None:
                return vectors
            self.close()  # /dev/shm is too small for the default workers: the thread path
            self.batch_workers = 0
        results: torch.Tensor | None = None
        # The fused forward holds half weights and must not run under autocast (its layer
        # norms would come out in float32 and the next in-place matmul refuse them).
        with torch.inference_mode(), self._autocast_for_forward():
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

    def close(self) -> None:
        """Stop the tokenising processes (they also stop with this object, or at exit)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._pooled is not None:
            self._pooled.close()
            self._pooled = None

    def _autocast_for_forward(self):
        import contextlib

        # Batches with type ids take the model's modules (see _forward), under autocast.
        fused = self._bert is not None and self.zero_types
        return contextlib.nullcontext() if fused else self._autocast()

    def _unit_rows(self, ids, lengths, dense: bool = False):
        """Unit rows of a batch already on the device (ids padded, lengths per row; dense:
        no row is padded)."""
        import torch

        if self._bert is not None:
            return self._bert(ids, lengths, dense)
        vectors = self._embed(ids.long(), lengths, None).float()
        if self.truncate_dim is not None:
            vectors = vectors[:, : self.truncate_dim]
        return torch.nn.functional.normalize(vectors, p=2, dim=1)

    def _autocast(self):
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def _forward(self, batch: dict):
        cuda = self.device.type == "cuda"
        ids = batch["input_ids"].to(self.device, non_blocking=cuda)
        lengths = batch["lengths"].to(self.device, non_blocking=cuda)
        types = batch.get("token_type_ids")
        if types is not None:
            types = types.to(self.device, non_blocking=cuda)
        if self._bert is not None and types is None:
            return self._bert(ids, lengths)
        return self._embed(ids, lengths, types)

    def _embed(self, ids, lengths, types):
        """The model's sentence embeddings of a batch on the device, through its modules."""
        import torch

        positions = torch.arange(ids.shape[1], device=self.device)
        features = {"input_ids": ids}
        if "attention_mask" in self.inputs:
            features["attention_mask"] = (positions[None, :] < lengths[:, None]).to(ids.dtype)
        if "token_type_ids" in self.inputs:
            features["token_type_ids"] = torch.zeros_like(ids) if types is None else types
        rows = ids.shape[0]
        if self.compile and rows == 1:
            # A one-row batch would make the compiled graph specialise (compile again).
            features = {key: value.repeat(2, 1) for key, value in features.items()}
        return self._run_model(features)["sentence_embedding"][:rows]

    def _run_model(self, features: dict) -> dict:
        if self.compile and not self._compiled:
            import torch

            self._compiled = True
            try:
                self._call = torch.compile(self.forward_model, dynamic=True)
                return self._call(features)
            except Exception:  # noqa: BLE001 - no compiler here (Triton, a C compiler): eager
                self._call = self.forward_model
        return self._call(features)

    def _produced(self, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
        """Batches from a producer thread (:func:`encoders._thread_batches.produced`)."""
        return produced(self, texts)

    def _batches(self, texts: list[str]) -> Iterator[tuple[int, np.ndarray, dict | None, int]]:
        """The windows' batches, here (:func:`encoders._thread_batches.batches`)."""
        return batches(self, texts)


def _autocast_dtype(precision: str, kind: str):
    import torch

    if precision not in PRECISIONS:
        raise ValueError(precision)  # checked by the encoder's constructor before this
    if kind != "cuda" or precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16
