"""A BERT sentence encoder's forward as a few torch calls, and CUDA graphs of it per shape.

The fast path's batches arrive as padded ids and lengths. Running them through the model's
modules costs hundreds of small Python-level torch calls a batch (the HF attention-mask
helpers, per-head views, three projections where one fused one does), and on a GPU each
of those gives up the GIL and takes it back, so any other busy Python thread in the process
slows the forward (see benchmarks/RESULTS.md, "Third pass"). :class:`BertForward` computes
what a ``[Transformer(BERT), Pooling(mean | cls), (Normalize)]`` SentenceTransformer
computes, from the same weights, with the query, key and value projections fused and
PyTorch's scaled-dot-product attention; :class:`GraphForward` records it once per batch
shape as a CUDA graph, so a batch is one copy in and one replay.

Its ``kernels`` option (:data:`KERNELS`) picks how a layer's element-wise work is done, since
with hidden size 384 the memory passes of bias adds, GELU, residual adds and layer norms cost
about as much as the matmuls: ``"eager"`` one torch call each; ``"epilogue"`` the FFN's bias
and GELU in the up-projection's cuBLASLt epilogue (``torch._addmm_activation``: the tanh
approximation of GELU, where the model's own is erf); ``"fold"`` that, and the residual adds
done by the matmuls themselves (``addmm_`` into the residual; the following linear's bias is
moved into the layer norm before it, and taken back out of the next matmul's bias, so the
sums are those of the model); ``"inductor"`` the eager forward under ``torch.compile``
(dynamic shapes; eager, with the error kept, where no compiler works).

Only what :func:`bert_forward_supported` accepts takes this path; anything else keeps the
model's own modules.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["KERNELS", "BertForward", "GraphForward", "bert_forward_supported"]

KERNELS = ("eager", "epilogue", "fold", "inductor")


def _pooling_mode(pooling) -> str | None:
    """"mean" or "cls" when ``pooling`` (an ST Pooling module) uses exactly that, else None."""
    config = pooling.get_config_dict()
    mode = config.get("pooling_mode")
    if isinstance(mode, (list, tuple)):
        mode = mode[0] if len(mode) == 1 else None
    if mode is None:  # sentence-transformers before 6: one flag per mode
        flags = [key for key, value in config.items()
                 if key.startswith("pooling_mode_") and value is True]
        mode = {"pooling_mode_mean_tokens": "mean",
                "pooling_mode_cls_token": "cls"}.get(flags[0]) if len(flags) == 1 else None
    return mode if mode in ("mean", "cls") else None


def bert_forward_supported(model) -> bool:
    """True when :class:`BertForward` computes what ``model``'s modules compute."""
    try:
        modules = list(model)
    except TypeError:
        return False
    if len(modules) < 2 or type(modules[0]).__name__ != "Transformer":
        return False
    if type(modules[1]).__name__ != "Pooling" or _pooling_mode(modules[1]) is None:
        return False
    if any(type(m).__name__ != "Normalize" for m in modules[2:]):
        return False  # a Dense head or anything else: the modules' own forward
    auto = getattr(modules[0], "auto_model", None)
    config = getattr(auto, "config", None)
    if config is None or getattr(config, "model_type", None) != "bert":
        return False
    return (getattr(config, "position_embedding_type", "absolute") == "absolute"
            and getattr(config, "hidden_act", None) == "gelu"
            and not getattr(config, "is_decoder", False)
            and config.hidden_size % config.num_attention_heads == 0)


class BertForward:
    """``(ids, lengths) -> (rows, dim)`` float32 unit rows, as the model's modules give.

    Args:
        model: a SentenceTransformer for which :func:`bert_forward_supported` is True.
        dtype: the weights' and activations' dtype (e.g. ``torch.float16`` on CUDA);
            pooling and normalising run in float32.
        truncate_dim: keep this many leading dimensions before normalising (Matryoshka).
        kernels: one of :data:`KERNELS`.
    """

    def __init__(self, model, *, dtype, truncate_dim: int | None = None,
                 kernels: str = "eager") -> None:
        import torch

        if kernels not in KERNELS:
            raise ValueError(kernels)  # an internal option: callers pass a KERNELS name
        self.kernels = kernels
        self.compile_error: str | None = None  # why "inductor" runs eager, if it does
        self._compiled = None

        auto = model[0].auto_model
        config = auto.config
        self.heads = int(config.num_attention_heads)
        self.eps = float(config.layer_norm_eps)
        self.mode = _pooling_mode(model[1])
        self.truncate_dim = truncate_dim
        weights = {name: value.detach() for name, value in auto.state_dict().items()}

        def take(name: str):
            return weights[name].to(dtype=dtype).contiguous()

        self.word = take("embeddings.word_embeddings.weight")
        # Single-sequence type ids are all zero: type 0's row is added to every position.
        self.positions = (take("embeddings.position_embeddings.weight")
                          + take("embeddings.token_type_embeddings.weight")[0])
        self.norm = (take("embeddings.LayerNorm.weight"), take("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(config.num_hidden_layers)):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            qkv_w = torch.cat([take(a + f"self.{k}.weight") for k in ("query", "key", "value")])
            qkv_b = torch.cat([take(a + f"self.{k}.bias") for k in ("query", "key", "value")])
            self.layers.append((
                qkv_w, qkv_b, take(a + "output.dense.weight"), take(a + "output.dense.bias"),
                take(a + "output.LayerNorm.weight"), take(a + "output.LayerNorm.bias"),
                take(p + "intermediate.dense.weight"), take(p + "intermediate.dense.bias"),
                take(p + "output.dense.weight"), take(p + "output.dense.bias"),
                take(p + "output.LayerNorm.weight"), take(p + "output.LayerNorm.bias")))
        self.folded = _folded(weights, int(config.num_hidden_layers), dtype) \
            if kernels == "fold" else None

    def __call__(self, ids, lengths, dense: bool = False):
        """``ids``: ``(rows, width)`` int32 or int64 token ids, padded on the right;
        ``lengths``: ``(rows,)`` real tokens per row (>= 1). Same device as the weights.
        ``dense``: every row that matters is ``width`` long, so attention takes no mask
        (the other rows' vectors are then meaningless)."""
        if self.kernels == "epilogue":
            return self._flat(ids, lengths, dense)
        if self.kernels == "fold":
            return self._fold(ids, lengths, dense)
        if self.kernels == "inductor" and self.compile_error is None:
            return self._inductor(ids, lengths, dense)
        return self._eager(ids, lengths, dense)

    def _inductor(self, ids, lengths, dense: bool):
        import torch
        from torch.fx.experimental import _config as shapes

        if self._compiled is None:
            self._compiled = torch.compile(self._eager, dynamic=True)
        try:
            # Without duck shapes a batch whose rows happen to equal its width (256 x 256)
            # does not tie the two sizes together, which would recompile for every other.
            with shapes.patch(use_duck_shape=False):
                return self._compiled(ids, lengths, dense)
        except Exception as error:  # noqa: BLE001 - no Triton or C compiler here: eager
            self.compile_error = repr(error)
            return self._eager(ids, lengths, dense)

    def _eager(self, ids, lengths, dense: bool):
        import torch
        import torch.nn.functional as F

        rows, width = ids.shape
        hidden = self.word.shape[1]
        x = F.embedding(ids, self.word) + self.positions[:width]
        x = F.layer_norm(x, (hidden,), *self.norm, self.eps)
        valid = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]
        mask = None if dense else valid[:, None, None, :]  # True: attend; broadcast
        size = hidden // self.heads
        for (qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b,
             up_w, up_b, down_w, down_b, ln2_w, ln2_b) in self.layers:
            q, k, v = (F.linear(x, qkv_w, qkv_b).view(rows, width, 3, self.heads, size)
                       .permute(2, 0, 3, 1, 4).unbind(0))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            attended = attended.transpose(1, 2).reshape(rows, width, hidden)
            x = F.layer_norm(F.linear(attended, out_w, out_b) + x, (hidden,), ln1_w, ln1_b,
                             self.eps)
            up = F.gelu(F.linear(x, up_w, up_b))
            x = F.layer_norm(F.linear(up, down_w, down_b) + x, (hidden,), ln2_w, ln2_b,
                             self.eps)
        return self._pooled(x, valid)

    def _start(self, ids, lengths, dense: bool, norm):
        """Embeddings as ``(rows * width, hidden)``, the valid-token mask and attention's."""
        import torch
        import torch.nn.functional as F

        rows, width = ids.shape
        hidden = self.word.shape[1]
        x = (F.embedding(ids, self.word) + self.positions[:width]).view(rows * width, hidden)
        x = F.layer_norm(x, (hidden,), *norm, self.eps)
        valid = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]
        return x, valid, None if dense else valid[:, None, None, :]

    def _attend(self, x, qkv_w, qkv_b, mask, rows: int, width: int):
        """Attention's ``(rows * width, hidden)`` output before its output projection."""
        import torch
        import torch.nn.functional as F

        hidden = self.word.shape[1]
        q, k, v = (torch.addmm(qkv_b, x, qkv_w.t())
                   .view(rows, width, 3, self.heads, hidden // self.heads)
                   .permute(2, 0, 3, 1, 4).unbind(0))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return attended.transpose(1, 2).reshape(rows * width, hidden)

    def _flat(self, ids, lengths, dense: bool):
        """The eager forward on 2-D activations, the FFN's bias and GELU in one epilogue."""
        import torch
        import torch.nn.functional as F

        rows, width = ids.shape
        hidden = self.word.shape[1]
        x, valid, mask = self._start(ids, lengths, dense, self.norm)
        for (qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b,
             up_w, up_b, down_w, down_b, ln2_w, ln2_b) in self.layers:
            attended = self._attend(x, qkv_w, qkv_b, mask, rows, width)
            x = F.layer_norm(torch.addmm(out_b, attended, out_w.t()) + x, (hidden,),
                             ln1_w, ln1_b, self.eps)
            up = torch._addmm_activation(up_b, x, up_w.t(), use_gelu=True)
            x = F.layer_norm(torch.addmm(down_b, up, down_w.t()) + x, (hidden,),
                             ln2_w, ln2_b, self.eps)
        return self._pooled(x.view(rows, width, hidden), valid)

    def _fold(self, ids, lengths, dense: bool):
        """As :meth:`_flat`, the residual adds done by the matmuls (``addmm_`` in place):
        ``y`` is the residual plus the next linear's bias (see :func:`_folded`)."""
        import torch
        import torch.nn.functional as F

        rows, width = ids.shape
        hidden = self.word.shape[1]
        y, valid, mask = self._start(ids, lengths, dense, self.folded[0])
        for (qkv_w, _, out_w, _, ln1_w, _, up_w, _, down_w, _, ln2_w, _), (
                qkv_b, ln1_b, up_b, ln2_b) in zip(self.layers, self.folded[1], strict=True):
            attended = self._attend(y, qkv_w, qkv_b, mask, rows, width)
            y = F.layer_norm(y.addmm_(attended, out_w.t()), (hidden,), ln1_w, ln1_b, self.eps)
            up = torch._addmm_activation(up_b, y, up_w.t(), use_gelu=True)
            y = F.layer_norm(y.addmm_(up, down_w.t()), (hidden,), ln2_w, ln2_b, self.eps)
        return self._pooled(y.view(rows, width, hidden), valid)

    def _pooled(self, x, valid):
        import torch.nn.functional as F

        if self.mode == "cls":
            pooled = x[:, 0].float()
        else:
            weights = valid.unsqueeze(-1).float()
            pooled = (x.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        if self.truncate_dim is not None:
            pooled = pooled[:, : self.truncate_dim]
        return F.normalize(pooled, p=2, dim=1)


def _folded(weights: dict, layers: int, dtype) -> tuple:
    """Biases of the ``"fold"`` kernels, computed in float32 from the model's weights.

    Each layer norm's output carries the bias ``c`` of the linear whose residual it feeds
    (the attention's or the FFN's output projection), so that matmul's ``addmm_`` into it
    adds residual and bias at once; the matmul that reads the same output first (query, key
    and value, or the FFN's up-projection) takes ``W @ c`` off its own bias. The last
    layer norm keeps its own bias, so the pooled states are the model's.
    Returns ``(embedding norm (weight, bias), [(qkv_b, ln1_b, up_b, ln2_b)] per layer)``."""
    import torch

    def f32(name: str):
        return weights[name].float()

    def cast(value):
        return value.to(dtype=dtype).contiguous()

    out_bias = [f32(f"encoder.layer.{i}.attention.output.dense.bias") for i in range(layers)]
    found = []
    for i in range(layers):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        qkv_w = torch.cat([f32(a + f"self.{k}.weight") for k in ("query", "key", "value")])
        qkv_b = torch.cat([f32(a + f"self.{k}.bias") for k in ("query", "key", "value")])
        down_b = f32(p + "output.dense.bias")
        following = out_bias[i + 1] if i + 1 < layers else torch.zeros_like(down_b)
        found.append((cast(qkv_b - qkv_w @ out_bias[i]),
                      cast(f32(a + "output.LayerNorm.bias") + down_b),
                      cast(f32(p + "intermediate.dense.bias")
                           - f32(p + "intermediate.dense.weight") @ down_b),
                      cast(f32(p + "output.LayerNorm.bias") + following)))
    norm = (cast(f32("embeddings.LayerNorm.weight")),
            cast(f32("embeddings.LayerNorm.bias") + out_bias[0]))
    return norm, found


class GraphForward:
    """One CUDA graph of ``forward`` per batch shape, all reading one static input buffer.

    A batch is copied into :attr:`inputs` (ids in its first ``rows * width`` entries, the
    lengths in the ``max_rows`` entries after ``max_tokens``, and ``max_rows`` more entries
    the graphs never read: the layout of a batch worker's slot), then :meth:`__call__` replays
    the graph of that shape (recording it the first time) and returns its output tensor,
    which the next replay overwrites.

    Args:
        forward: ``(ids, lengths, dense) -> (rows, dim)``, free of host synchronisation.
        device: a CUDA device.
        max_tokens: the largest ``rows * width`` of a batch.
        max_rows: the most rows of a batch.
    """

    def __init__(self, forward: Callable, *, device, max_tokens: int, max_rows: int) -> None:
        import torch

        self.forward = forward
        self.max_tokens = max_tokens
        self.max_rows = max_rows
        self.inputs = torch.zeros(max_tokens + 2 * max_rows, dtype=torch.int32, device=device)
        self.inputs[max_tokens:] = 1  # lengths of rows never written: no empty row
        self.graphs: dict[tuple[int, int], tuple] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def _views(self, rows: int, width: int):
        ids = self.inputs[: rows * width].view(rows, width)
        return ids, self.inputs[self.max_tokens : self.max_tokens + rows]

    def __call__(self, rows: int, width: int, dense: bool = False):
        entry = self.graphs.get((rows, width, dense))
        if entry is None:
            entry = self.graphs[(rows, width, dense)] = self._record(rows, width, dense)
        entry[0].replay()
        return entry[1]

    def _record(self, rows: int, width: int, dense: bool) -> tuple:
        import torch

        ids, lengths = self._views(rows, width)
        # Warm up on a side stream (cuBLAS and the attention kernels pick their plans
        # outside the capture), as torch.cuda.graphs' documentation asks.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.forward(ids, lengths, dense)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            output = self.forward(ids, lengths, dense)
        return graph, output
