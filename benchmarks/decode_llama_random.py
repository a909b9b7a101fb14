"""Measure decode steps of a random-weight Llama-architecture model; compare with kvplan.

    python benchmarks/decode_llama_random.py --gpu h100-sxm --out results.json

Standalone: needs PyTorch (not a kvplan dependency) and kvplan importable (installed, or
run from the repository root). Nothing here is imported by the package or the tests.

For every number of KV heads G, it builds a bf16 model with random weights (Llama blocks:
RMSNorm, fused QKV with RoPE, SDPA attention, SwiGLU MLP, untied embeddings and LM head),
pre-fills a KV cache of `ctx` tokens per sequence with random values, and times decode steps
(embedding -> all layers -> logits -> greedy argmax) at each batch size with CUDA events,
after warm-up. Each step writes one new token's K/V into the cache and attends over ctx + 1
tokens; the context is held fixed, so every timed step is the same step. Next to the
measured ms/step it prints kvplan's roofline prediction (`estimate_decode`) for the same
geometry and GPU, their ratio, and the bandwidth the measurement implies for kvplan's byte
count.

Attention (--attn): `gqa` passes the G-head cache to SDPA with enable_gqa=True (PyTorch
>= 2.5), `repeat` expands K/V to H heads with repeat_interleave first (extra traffic: a
pessimistic fallback), `fold` folds each group's H/G query heads into the query-length axis
(exact for one decode token; reads K/V once, but only B x G programs run: slow at small
batch). `auto` = gqa when this PyTorch supports it, else repeat. PyTorch's SDPA kernels have
no split-KV decode path, so small batches at long contexts leave SMs idle; a dedicated
decode kernel (FlashDecoding, vLLM's paged attention) would be faster there.

Configurations whose weights + cache do not fit in --memory-fraction of the free memory are
skipped and listed. Defaults (Llama-3-8B geometry, G in 32/8/1, batch up to 128, context up
to 16k) fit in 80 GB. --device cpu with a tiny geometry is a smoke test of the script only.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the script's only hard requirement
    sys.exit("this benchmark needs PyTorch: pip install torch")

try:
    from kvplan.core.budget import Engine
except ImportError:  # run from a checkout without installing kvplan
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.design import design_spec
from kvplan.core.roofline import efficiency, estimate_decode
from kvplan.sources.gpus import load_gpus
from kvplan.units import GiB

DTYPE = torch.bfloat16
ELEMENT_BYTES = 2  # bf16
ROPE_THETA = 500_000.0  # Llama 3
RMS_EPS = 1e-5
WORKSPACE_BYTES = 2 * GiB  # activations, logits, cuBLAS workspace, allocator slack
LOGIT_COPIES = 3  # logits, their fp32 argmax input, and a spare


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--gpu",
        required=True,
        help="kvplan GPU name for the prediction, e.g. h100-sxm (see `kvplan gpus`)",
    )
    p.add_argument("--out", help="write the results as JSON to this file")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32, help="query heads H")
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--intermediate", type=int, default=14336)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--kv-heads", type=int_list, default=[32, 8, 1], help="G values, e.g. 32,8,1")
    p.add_argument("--batches", type=int_list, default=[1, 4, 16, 32, 64, 128])
    p.add_argument("--contexts", type=int_list, default=[512, 4096, 16384])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median is kept)")
    p.add_argument("--attn", choices=("auto", "gqa", "repeat", "fold"), default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the step (off)")
    p.add_argument("--cuda-graph", action="store_true", help="replay the step as a CUDA graph")
    p.add_argument("--device", default="cuda")
    p.add_argument(
        "--memory-fraction",
        type=float,
        default=0.92,
        help="skip configurations needing more than this share of free memory",
    )
    p.add_argument(
        "--bw-efficiency",
        type=float,
        help="kvplan --bw-efficiency for the prediction [kvplan's default]",
    )
    p.add_argument("--compute-efficiency", type=float)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.heads * args.head_dim <= 0 or any(args.heads % g for g in args.kv_heads):
        p.error(f"every --kv-heads value must divide --heads {args.heads}")
    return args


# ---- the model -------------------------------------------------------------------------------
class RandomLlama:
    """Llama blocks with random bf16 weights in nn.Linear layout ([out, in])."""

    def __init__(self, args: argparse.Namespace, kv_heads: int, device: torch.device) -> None:
        self.h, self.g, self.d = args.heads, kv_heads, args.head_dim
        self.hidden, self.inter = args.hidden, args.intermediate
        gen = torch.Generator(device=device).manual_seed(args.seed)

        def w(rows: int, cols: int) -> torch.Tensor:
            t = torch.randn(rows, cols, generator=gen, device=device, dtype=DTYPE)
            return t.mul_(cols**-0.5)  # keeps activations O(1) through the layers

        qkv = (self.h + 2 * self.g) * self.d
        self.embed = w(args.vocab, self.hidden)
        self.layers = [
            {
                "ln1": torch.ones(self.hidden, device=device, dtype=DTYPE),
                "wqkv": w(qkv, self.hidden),
                "wo": w(self.hidden, self.h * self.d),
                "ln2": torch.ones(self.hidden, device=device, dtype=DTYPE),
                "wgu": w(2 * self.inter, self.hidden),
                "wdown": w(self.hidden, self.inter),
            }
            for _ in range(args.layers)
        ]
        self.ln_f = torch.ones(self.hidden, device=device, dtype=DTYPE)
        self.lm_head = w(args.vocab, self.hidden)

    def weight_bytes(self) -> int:
        tensors = [
            self.embed,
            self.ln_f,
            self.lm_head,
            *(t for layer in self.layers for t in layer.values()),
        ]
        return sum(t.numel() * t.element_size() for t in tensors)


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + RMS_EPS)).to(x.dtype) * weight


def rope_tables(pos: int, d: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (ROPE_THETA ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d))
    angles = pos * inv
    return torch.cos(angles).to(DTYPE), torch.sin(angles).to(DTYPE)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE (Hugging Face Llama layout) for one position."""
    x1, x2 = x.chunk(2, dim=-1)
    c = torch.cat((cos, cos))
    s = torch.cat((sin, sin))
    return x * c + torch.cat((-x2, x1), dim=-1) * s


def sdpa_supports_gqa(device: torch.device) -> bool:
    q = torch.zeros(1, 2, 1, 8, device=device, dtype=DTYPE)
    kv = torch.zeros(1, 1, 3, 8, device=device, dtype=DTYPE)
    try:
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
    except (TypeError, RuntimeError):
        return False
    return True


def attend(q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, mode: str) -> torch.Tensor:
    """q [B, H, d] against the cache [B, G, T, d] -> [B, H, d]; all T tokens are visible."""
    b, h, d = q.shape
    g = kc.shape[1]
    if mode == "fold":  # group j's H/G query heads become H/G query positions of KV head j
        out = F.scaled_dot_product_attention(q.view(b, g, h // g, d), kc, vc)
        return out.reshape(b, h, d)
    if mode == "gqa":
        return F.scaled_dot_product_attention(q.unsqueeze(2), kc, vc, enable_gqa=True)[:, :, 0]
    k = kc.repeat_interleave(h // g, dim=1) if g != h else kc
    v = vc.repeat_interleave(h // g, dim=1) if g != h else vc
    return F.scaled_dot_product_attention(q.unsqueeze(2), k, v)[:, :, 0]


def make_step(
    model: RandomLlama,
    caches: list[tuple[torch.Tensor, torch.Tensor]],
    pos: int,
    mode: str,
    device: torch.device,
):
    """One decode step for every sequence: write K/V at `pos`, attend over pos + 1 tokens."""
    h, g, d = model.h, model.g, model.d
    cos, sin = rope_tables(pos, d, device)

    def step(tokens: torch.Tensor) -> torch.Tensor:
        b = tokens.shape[0]
        x = model.embed[tokens]
        for layer, (kc, vc) in zip(model.layers, caches, strict=True):
            qkv = F.linear(rms_norm(x, layer["ln1"]), layer["wqkv"])
            q, k, v = qkv.split((h * d, g * d, g * d), dim=-1)
            q = rope(q.view(b, h, d), cos, sin)
            kc[:, :, pos] = rope(k.view(b, g, d), cos, sin)
            vc[:, :, pos] = v.view(b, g, d)
            x = x + F.linear(attend(q, kc, vc, mode).reshape(b, h * d), layer["wo"])
            gate, up = F.linear(rms_norm(x, layer["ln2"]), layer["wgu"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer["wdown"])
        logits = F.linear(rms_norm(x, model.ln_f), model.lm_head)
        return logits.float().argmax(dim=-1)

    return step


# ---- timing ----------------------------------------------------------------------------------
def runner(step, tokens: torch.Tensor, args: argparse.Namespace, device: torch.device):
    if args.compile:
        step = torch.compile(step)
    if not (args.cuda_graph and device.type == "cuda"):
        return lambda: step(tokens)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(tokens)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step(tokens)

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return replay


def time_ms(run, args: argparse.Namespace, device: torch.device) -> float:
    """Median over repeats of (elapsed / steps), CUDA events on a GPU, wall clock on CPU."""
    for _ in range(args.warmup + (3 if args.compile else 0)):
        run()
    results = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.steps):
                run()
            end.record()
            end.synchronize()
            results.append(start.elapsed_time(end) / args.steps)
        else:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            results.append((time.perf_counter() - t0) * 1e3 / args.steps)
    return statistics.median(results)


def free_bytes(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info(device)[0]


def config_bytes(args: argparse.Namespace, g: int, batch: int, ctx: int, mode: str) -> int:
    cache = args.layers * 2 * batch * g * (ctx + 1) * args.head_dim * ELEMENT_BYTES
    expanded = (
        2 * batch * args.heads * (ctx + 1) * args.head_dim * ELEMENT_BYTES
        if mode == "repeat" and g != args.heads
        else 0
    )
    logits = LOGIT_COPIES * batch * args.vocab * 4
    return cache + expanded + logits + WORKSPACE_BYTES


# ---- kvplan's prediction ---------------------------------------------------------------------
def predict(args: argparse.Namespace, g: int, batch: int, ctx: int):
    spec = design_spec(
        layers=args.layers,
        heads=args.heads,
        head_dim=args.head_dim,
        hidden=args.hidden,
        kv_heads=g,
        intermediate=args.intermediate,
        vocab=args.vocab,
    )
    d = Deployment(
        spec=spec,
        gpu=load_gpus().get(args.gpu),
        engine=Engine.NONE,
        kv_dtype="bf16",
        weight_dtype="bf16",
        kv_memory=GiB,
    )
    eff = efficiency(bandwidth=args.bw_efficiency, compute=args.compute_efficiency)
    return estimate_decode(plan(d), batch=batch, ctx=ctx, efficiency=eff)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: pass --device cpu for a smoke test")
    mode = args.attn
    if mode == "auto":
        mode = "gqa" if sdpa_supports_gqa(device) else "repeat"
    torch.manual_seed(args.seed)
    rows: list[dict] = []
    skipped: list[dict] = []
    header = (
        f"{'G':>4} {'batch':>6} {'ctx':>7} {'measured ms':>12} {'kvplan ms':>10} "
        f"{'ratio':>6} {'GB/s':>7} {'bound':>8} {'KV':>5}"
    )
    print(
        f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; "
        f"torch {torch.__version__}; attention: {mode}; compile: {args.compile}; "
        f"cuda graph: {args.cuda_graph}; kvplan GPU: {args.gpu}"
    )
    print(header)
    for g in args.kv_heads:
        model = RandomLlama(args, g, device)
        for ctx in args.contexts:
            for batch in args.batches:
                need = config_bytes(args, g, batch, ctx, mode)
                free = free_bytes(device)
                if free is not None and need > args.memory_fraction * free:
                    skipped.append(
                        {
                            "kv_heads": g,
                            "batch": batch,
                            "ctx": ctx,
                            "reason": f"needs {need / GiB:.1f} GiB beyond the weights, "
                            f"{free / GiB:.1f} GiB free",
                        }
                    )
                    continue
                try:
                    caches = [
                        (
                            torch.randn(
                                batch, g, ctx + 1, args.head_dim, device=device, dtype=DTYPE
                            ),
                            torch.randn(
                                batch, g, ctx + 1, args.head_dim, device=device, dtype=DTYPE
                            ),
                        )
                        for _ in range(args.layers)
                    ]
                    tokens = torch.randint(0, args.vocab, (batch,), device=device)
                    run = runner(make_step(model, caches, ctx, mode, device), tokens, args, device)
                    ms = time_ms(run, args, device)
                except torch.cuda.OutOfMemoryError as exc:
                    skipped.append(
                        {
                            "kv_heads": g,
                            "batch": batch,
                            "ctx": ctx,
                            "reason": f"out of memory: {str(exc).splitlines()[0]}",
                        }
                    )
                    continue
                finally:
                    caches = run = None  # free before the next configuration
                e = predict(args, g, batch, ctx)
                achieved = e.bytes_total / (ms / 1e3)
                row = {
                    "kv_heads": g,
                    "batch": batch,
                    "ctx": ctx,
                    "measured_ms": ms,
                    "predicted_ms": e.decode_ms,
                    "ratio": e.decode_ms / ms,
                    "achieved_bytes_per_s": achieved,
                    "bound": e.bound,
                    "kv_share": e.kv_share,
                    "bytes_weights": e.bytes_weights,
                    "bytes_kv": e.bytes_kv,
                    "bytes_other": e.bytes_other,
                    "flops": e.flops,
                    "model_weight_bytes": model.weight_bytes(),
                }
                rows.append(row)
                print(
                    f"{g:>4} {batch:>6} {ctx:>7} {ms:>12.3f} {e.decode_ms:>10.3f} "
                    f"{e.decode_ms / ms:>6.2f} {achieved / 1e9:>7.0f} {e.bound:>8} "
                    f"{e.kv_share:>5.0%}",
                    flush=True,
                )
        del model
        free_bytes(device)
    for s in skipped:
        print(f"skipped G={s['kv_heads']} batch {s['batch']} ctx {s['ctx']}: {s['reason']}")
    if rows:
        ratios = [r["ratio"] for r in rows]
        print(
            f"{len(rows)} points: median ratio (kvplan / measured) "
            f"{statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}; "
            f"geometric mean {math.exp(statistics.fmean(math.log(r) for r in ratios)):.2f}"
        )
    if args.out:
        meta = {
            "gpu": args.gpu,
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "attention": mode,
            "compile": args.compile,
            "cuda_graph": args.cuda_graph,
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor(),
            "geometry": {
                k: getattr(args, k)
                for k in ("layers", "heads", "head_dim", "hidden", "intermediate", "vocab")
            },
            "warmup": args.warmup,
            "steps": args.steps,
            "repeats": args.repeats,
        }
        Path(args.out).write_text(
            json.dumps({"meta": meta, "rows": rows, "skipped": skipped}, indent=2) + "\n"
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
