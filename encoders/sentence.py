"""A sentence-transformers encoder that loads only from local folders or packages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np

from encoders.cuts import TRAINING_MANIFEST, keep_layers, layer_count, load_head, trained_matryoshka
from encoders.fast_encode import PRECISIONS, preferred_batch
from encoders.folder import content_digests, embedding_dim, stat_digest

# The model names and their resolution live in encoders.models; they stay importable from
# here, as before (and the encoder calls resolve_model through this module).
from encoders.models import BASE_MODEL, DEFAULT_MODEL, PACKAGED_MODELS, resolve_model
from encoders.runtime import capped_threads, shared_model
from encoders.sentence_fast import encode_alone, runner_for
from retriever.errors import InputError

__all__ = [
    "BASE_MODEL", "DEFAULT_MODEL", "PACKAGED_MODELS", "TRAINING_MANIFEST",
    "SentenceTransformerEncoder", "resolve_model", "trained_matryoshka",
]


def _optional_int(label: str, value: object, low: int, none_means: str) -> None:
    """InputError unless ``value`` is None or an int (not bool) >= ``low`` (0 or 1)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < low):
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise InputError(f"{label} must be {kind} or None ({none_means}), not {value!r}.")


class SentenceTransformerEncoder:
    """Encodes with a local sentence-transformers model, offline.

    Constructing one, ``dim``, ``config()`` and ``fingerprint()`` read the model folder's files
    and never load the model (nor import torch); the first encode call loads it. Loaded models
    are shared by every encoder of this process with the same weights, ``max_length`` and
    ``device`` (see ``encoders.runtime``), so a second encoder costs no second load.

    Args:
        model: a packaged model name (default ``all-MiniLM-L6-v2``) or a folder path.
        query_prompt: text put in front of every query (e.g. ``"query: "`` for E5 models).
        document_prompt: text put in front of every document.
        max_length: token limit per text; longer texts are truncated.
        batch_size: texts per forward pass. sentence-transformers sorts each call's texts by
            length before batching, so padding stays small.
        device: ``"cpu"``, ``"cuda"``...; None lets sentence-transformers choose.
        dims: keep only the first ``dims`` components of each vector, re-normalised
            (Matryoshka). A model trained by ``retriever train matryoshka`` accepts only the
            dimensions it was trained for; None keeps them all.
        layers: run only the first ``layers`` transformer layers (2D Matryoshka). A model
            trained with layers accepts only the depths it was trained for; None runs all.
        query_threads: the most torch intra-op threads used while encoding a call of at most
            ``batch_size`` queries (interactive search); None leaves torch's setting, one
            thread per core, which thrashes when other processes compete for the cores.
            Larger query sets (benchmarks) and documents use torch's setting. Vectors do not
            depend on it, so the fingerprint leaves it out.
        precision: ``"auto"`` (fp16 autocast on CUDA, fp32 on the CPU), ``"fp32"``,
            ``"fp16"`` or ``"bf16"`` (half precision applies on CUDA only). Half precision
            moves a vector by a cosine under 0.001 (benchmarks/gpu_encode.py), as a change of
            device does, so like the device it stays out of the fingerprint.
        batch_tokens: padded tokens per forward pass of the fast path (texts are sorted by
            token count and batched by this budget); None picks by device (8,192 on the CPU,
            as 32 texts of 256 tokens; 131,072 on CUDA).
        head: a fitted linear head (:mod:`encoders.head`) applied to every vector before the
            ``dims`` cut: a head shipped with the model by name (``"pca"``: prefixes that keep
            more than the raw ones; ``"itq"``: sign bits that keep more, for the binary index
            kinds) or the path of a head file. With a head, any ``dims`` up to the model's
            dimension is allowed: the head's axes replace the model's own.
        batch_workers: processes of the fast path that tokenise and pad whole batches
            (:mod:`encoders._batch_pool`); 0: none; None: the fast path's default (on CUDA
            one per core but one, for calls of at least 4,096 texts; none on the CPU). A set
            number serves every call. A Ray build gives each encoder actor its share of the
            host's cores this way. Vectors do not depend on it, so the fingerprint leaves it
            out.

    Models with a plain text transformer and a fast tokenizer (all-MiniLM-L6-v2 and the
    BERT family) encode through :mod:`encoders.fast_encode`: tokenised ahead on a worker
    thread, bucketed by length, pinned and overlapped on CUDA; other models keep
    sentence-transformers' ``encode``. Both give the same vectors (fp32: within 1e-5).

    Output rows are L2-normalised float32, so inner product is cosine similarity.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        query_prompt: str = "",
        document_prompt: str = "",
        max_length: int = 256,
        batch_size: int = 32,
        device: str | None = None,
        query_threads: int | None = 1,
        dims: int | None = None,
        layers: int | None = None,
        precision: str = "auto",
        batch_tokens: int | None = None,
        head: str | None = None,
        batch_workers: int | None = None,
    ) -> None:
        for label, value in (("max_length", max_length), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer, not {value!r}.")
        for label, value in (("model", model), ("query_prompt", query_prompt),
                             ("document_prompt", document_prompt)):
            if not isinstance(value, str):
                raise InputError(f"{label} must be a string, not {value!r}.")
        if device is not None and (not isinstance(device, str) or not device.strip()):
            raise InputError(f"device must be a name such as 'cpu' or 'cuda:0', not {device!r}.")
        _optional_int("query_threads", query_threads, 1, "torch's own setting")
        if precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}."
            )
        _optional_int("batch_tokens", batch_tokens, 1, "chosen by device")
        _optional_int("batch_workers", batch_workers, 0, "the fast path's default")
        self.precision = precision
        self.batch_tokens = batch_tokens
        self.batch_workers = batch_workers
        self.model = model
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.query_threads = query_threads
        self._path = resolve_model(model)
        self._model_key: tuple | None = None
        self.dims = dims
        self.layers = layers
        self.head = head
        self._head = None if head is None else load_head(head, model, self._path)
        self._check_matryoshka()
        if self._head is not None and self._head.info.get("kind") == "layer" \
                and self._head.info.get("layers") != layers:
            # A layer head maps one depth's vectors; at another it would scramble them.
            raise InputError(
                f"The head {head!r} was fitted for layers={self._head.info.get('layers')}; "
                f"pass that layers= with it (this encoder has layers={layers}).")

    def _check_matryoshka(self) -> None:
        """dims= and layers= against what the folder states, without loading the model."""
        trained = trained_matryoshka(self._path)
        limits = {"dims": embedding_dim(self._path), "layers": layer_count(self._path)}
        for label in ("dims", "layers"):
            value = getattr(self, label)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer or None, not {value!r}.")
            # A head's axes are not the trained prefixes: any cut of them is allowed.
            if label in trained and value not in trained[label] and not (
                    label == "dims" and self._head is not None):
                raise InputError(
                    f"The model {self.model!r} was trained for {label} "
                    f"{', '.join(map(str, trained[label]))} (its {TRAINING_MANIFEST}); "
                    f"{label}={value} is not one of them. Pass one of those, or leave {label} "
                    "unset for the full model."
                )
            limit = limits[label]
            if limit is not None and value > limit:
                raise InputError(
                    f"{label}={value} exceeds the model's {limit} "
                    f"{'output dimensions' if label == 'dims' else 'layers'}; pass at most "
                    f"{limit}, or leave {label} unset."
                )

    def config(self) -> dict:
        """Constructor arguments; ``SentenceTransformerEncoder(**config())`` rebuilds it."""
        config = {
            "model": self.model,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "device": self.device,
            "query_threads": self.query_threads,
        }
        # Only when set, so the config an index stored before these options existed is the
        # config such an encoder still reports.
        for key in ("dims", "layers", "batch_tokens", "head", "batch_workers"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        if self.precision != "auto":
            config["precision"] = self.precision
        return config

    def _settings_prefix(self) -> bytes:
        # The settings that change vectors, hashed ahead of the files. Kept byte for byte as
        # in the first release, so indexes built before keep matching their encoder; the
        # Matryoshka cuts join only when set.
        settings: list = [self.query_prompt, self.document_prompt, self.max_length]
        if self.dims is not None or self.layers is not None:
            settings.append({"dims": self.dims, "layers": self.layers})
        if self._head is not None:
            settings.append({"head": self._head.digest})
        return json.dumps(settings).encode()

    def fingerprint(self) -> str:
        """Hash of the weights, the model's config files and the settings that change vectors.

        Batch size, token budget, batch workers, device, precision and query threads are left
        out: they do not change what a text maps to beyond float rounding. Memoised per
        process by the files' stat, so a repeated call costs a stat per file and re-hashes
        only after a file changed.
        """
        # The files-only digest is the model cache key; computing it in the same read is free.
        return content_digests(self._path, [self._settings_prefix()], while_reading=[b""])[0]

    def identity(self) -> str | None:
        """For a merged adapter (the default model among them), what :meth:`fingerprint`
        hashes minus the merged weights' bytes: the settings and what the folder was merged
        from. The merge's float32 rounding differs between CPUs (AVX2 and AVX-512 BLAS
        kernels), so the fingerprint of the same model does too, and an index records this
        beside it to stay usable on another machine. None for any other folder, whose
        fingerprint is the same everywhere."""
        from encoders.folder import merge_identity

        merged = merge_identity(self._path)
        if merged is None:
            return None
        return hashlib.blake2b(self._settings_prefix() + merged.encode(),
                               digest_size=16).hexdigest()

    def stat_signature(self) -> str:
        """A cheap stand-in for :meth:`fingerprint` on this machine: a hash of the settings and
        each model file's stat (not its bytes). An index records it beside the fingerprint; an
        unchanged signature later proves an unchanged fingerprint without reading 90 MB of
        weights in every new process (a CLI call on an unchanged tree)."""
        return stat_digest(self._path, self._settings_prefix())

    def _model(self):
        # Keyed by the files alone, so encoders that differ only in prompts share one model.
        # A first read of the files also memoises this encoder's fingerprint. The key is
        # worked out once per encoder: its walk and stats of the folder cost about 1 ms, a
        # fifteenth of a query's encoding (an index checks the files once, when it takes the
        # encoder); the model itself still comes from the shared cache, so a cleared cache
        # reloads it.
        key = self._model_key
        if key is None:
            weights = content_digests(self._path, [b""],
                                      while_reading=[self._settings_prefix()])[0]
            key = self._model_key = (weights, self.max_length, self.device, self.layers)
        return shared_model(key, self._load)


    def _load(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar on stderr; a library must not print,
        # so switch it off for this load and restore the caller's setting afterwards.
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = SentenceTransformer(str(self._path), device=self.device, local_files_only=True)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        # Never exceed what the model was configured for: position embeddings end there.
        # max_length is part of the cache key, so no other encoder sees this setting.
        limit = model.max_seq_length or self.max_length
        model.max_seq_length = min(self.max_length, limit)
        if self.layers is not None:
            keep_layers(model, self.layers, self._path)
        described = embedding_dim(self._path)
        produced = _loaded_dim(model)
        if self._head is not None and self._head.dim != produced:
            raise InputError(
                f"The head {self.head!r} turns {self._head.dim}-d vectors, but the model "
                f"{self.model!r} produces {produced}-d ones; fit a head for this model with "
                "`retriever train head`."
            )
        if described is not None and described != produced:
            raise InputError(
                f"The model folder {self._path} describes {described}-dimensional output in its "
                f"module configs, but the loaded model produces {produced}. Re-save the model "
                "with sentence-transformers so its configs match its weights."
            )
        return model

    @property
    def dim(self) -> int:
        """Output dimension, read from the model folder's configs (loads only unusual folders)."""
        if self.dims is not None:
            return self.dims
        described = embedding_dim(self._path)
        return described if described is not None else _loaded_dim(self._model())

    @property
    def preferred_batch(self) -> int:
        """Texts a build hands :meth:`encode_documents` at once: enough to keep this
        encoder's device busy (a GPU starves on the CPU's 256). Loads no model."""
        device = self.device
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return preferred_batch(device)

    def _encode(
        self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("Pass a list of texts, not one string (it would be encoded "
                             "character by character).")
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"Texts to encode must be strings; item {position} is a "
                                 f"{type(text).__name__}.")
        texts = [prompt + text for text in texts] if prompt else texts
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._model()
        fast = runner_for(model, precision=self.precision, batch_tokens=self.batch_tokens,
                          batch_workers=self.batch_workers)
        if fast is not None:
            if len(texts) == 1 and progress is None and fast.device.type == "cpu":
                return self._cut(encode_alone(fast, texts[0]))
            return self._cut(fast.encode(texts, progress))
        parts = []
        # Chunks of many batches keep the progress callback moving on long inputs while
        # sentence-transformers still sorts each chunk by length.
        step = self.batch_size * 8
        for start in range(0, len(texts), step):
            part = texts[start : start + step]
            vectors = model.encode(
                part,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            parts.append(self._cut(np.asarray(vectors, dtype=np.float32)))
            if progress is not None:
                progress(len(part))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def cache_view(self):
        """``(base, cut)`` when this encoder's vectors are another's turned and cut: ``base``
        encodes the same texts without the head and the ``dims`` cut (same model, shared
        when loaded), ``cut(vectors)`` turns its vectors into this encoder's. A vector
        cache keeps ``base``'s vectors, so a head or a cut costs no embedding on a cached
        tree. None when there is neither."""
        if self._head is None and self.dims is None:
            return None
        config = {k: v for k, v in self.config().items() if k not in ("head", "dims")}
        return SentenceTransformerEncoder(**config), self._cut

    def _cut(self, vectors: np.ndarray) -> np.ndarray:
        """The head's turn (if any), then the Matryoshka prefix of ``dims`` components,
        re-normalised; all of them if unset."""
        if self._head is not None:
            vectors = self._head.apply(vectors)
        if self.dims is not None:
            vectors = vectors[:, : self.dims]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries. Returns an ``(n, dim)`` float32 array of unit rows.

        A call of at most ``batch_size`` queries runs with at most ``query_threads`` torch
        threads; the process's setting is restored afterwards.
        """
        threads = self.query_threads if len(texts) <= self.batch_size else None
        if not texts:
            threads = None  # nothing to encode: no reason to import torch
        with capped_threads(threads):
            return self._encode(texts, self.query_prompt, None)

    def encode_documents(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Encode documents. Returns an ``(n, dim)`` float32 array of unit rows.

        Args:
            texts: the documents.
            progress: called with the number of texts finished after each group of batches.
        """
        return self._encode(texts, self.document_prompt, progress)


def _loaded_dim(model) -> int:
    # sentence-transformers 6 renamed the method; older releases only have the long name.
    getter = getattr(model, "get_embedding_dimension", None)
    return int(getter() if getter else model.get_sentence_embedding_dimension())
