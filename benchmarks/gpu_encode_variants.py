"""The settings ``benchmarks/gpu_encode.py`` measures: its fast-path variants and host rows."""

from __future__ import annotations

from encoders._bert_forward import KERNELS

__all__ = ["host_settings", "variants"]


def variants(args, cuda: bool) -> list[dict]:
    """The fast-path settings to run, the previous version's first."""
    precision = "fp16" if cuda else "fp32"
    runs = []
    if args.previous:
        runs.append({"variant": "previous", "precision": precision, "half_weights": cuda,
                     "batch_tokens": args.budget})
    # The thread path and the tokenising processes with the model's modules, as measured
    # before batch workers existed (now the CUDA default, so they are pinned off here).
    base = {"precision": precision, "batch_tokens": args.budget, "batch_workers": 0,
            "forward": "module"}
    runs.append({"variant": "rust-thread", **base, "half_weights": False,
                 "tokenise_workers": 0, "words": False})
    runs.append({"variant": "words-pool", **base, "half_weights": False,
                 "tokenise_workers": args.workers})
    if cuda:
        runs.append({"variant": "words-pool-half", **base, "half_weights": True,
                     "tokenise_workers": args.workers})
    if args.compile:
        runs.append({"variant": "words-pool-half-compile", **base, "half_weights": cuda,
                     "tokenise_workers": args.workers, "compile": True})
    batch = {**base, "half_weights": False, "batch_workers": args.batch_workers}
    runs.append({"variant": "rust-thread-bert", **base, "half_weights": False,
                 "tokenise_workers": 0, "words": False, "forward": "bert"})
    runs.append({"variant": "default", "precision": "auto", "batch_tokens": args.budget})
    runs.append({"variant": "pool-module", **batch, "forward": "module"})
    if cuda:
        runs.append({"variant": "pool-module-half", **batch, "half_weights": True,
                     "forward": "module"})
    runs.append({"variant": "pool-bert", **batch, "forward": "bert"})
    if cuda:
        # The graphs with each kernel choice of the fused forward (encoders._bert_forward),
        # at this budget, at twice, half and a quarter of it (262,144, 65,536 and 32,768
        # tokens by default), and other worker counts.
        budget = args.budget or 131072
        for kernels in KERNELS:
            name = "pool-graphs" if kernels == "eager" else f"pool-graphs-{kernels}"
            graphs = {**batch, "forward": "graphs", "kernels": kernels}
            runs.append({"variant": name, **graphs})
            for tokens in (2 * budget, budget // 2, budget // 4):
                runs.append({"variant": f"{name}-{tokens // 1024}k", **graphs,
                             "batch_tokens": tokens})
            for workers in args.graph_workers or []:
                runs.append({"variant": f"{name}-w{workers}", **graphs, "batch_workers": workers})
            for nice in (5, 15):  # workers below the parent (os.nice), so it launches on time
                runs.append({"variant": f"{name}-nice{nice}", **graphs, "worker_nice": nice})
                runs.append({"variant": f"{name}-w16-nice{nice}", **graphs,
                             "worker_nice": nice, "batch_workers": 16})
    return runs


def host_settings(cuda: bool, pools: list[int] | None, batch_pools: list[int] | None
                   ) -> list[dict]:
    """In this process (the Rust tokenizer, then the word path), then worker pools, then
    batch-worker pools (-1: one per core but one)."""
    batch = [{"batch_workers": n} for n in (batch_pools or [])]
    off = {"batch_workers": 0}  # the thread and tokenising-process rows
    if pools is not None:  # pools only, these sizes (0: the default)
        return [{"tokenise_workers": n or None, "words": True, **off} for n in pools] + batch
    workers = [None, 8] if cuda else [2]
    return ([{"tokenise_workers": 0, "words": False, **off},
             {"tokenise_workers": 0, "words": True, **off}]
            + [{"tokenise_workers": n, "words": True, **off} for n in workers] + batch)
