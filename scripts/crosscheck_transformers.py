"""Independent cross-check of KV-cache bytes and parameter counts, using HF transformers.

Developer-only tool. It deliberately imports nothing from kvplan (independence is the point) and
needs torch + transformers, which are NOT kvplan runtime dependencies. Use a separate venv:

    python3 -m venv /work/xcheck-venv
    /work/xcheck-venv/bin/pip install torch transformers accelerate
    /work/xcheck-venv/bin/python scripts/crosscheck_transformers.py [EXTRA_CONFIG_DIR ...]

For every Hugging Face ``config.json`` copy in ``configs/models/*.json`` (``*.params.json``
skipped) and in any extra directory given on the command line, it

1. builds the model from the config on the meta device (shapes only, no memory, no weights);
2. counts parameters (total, input embedding, lm_head, whether they are tied);
3. runs forward passes on meta with ``use_cache=True`` for a small batch at several context
   lengths and reads, layer by layer, every tensor the returned cache object holds (K, V,
   indexer keys, conv state, recurrent/SSM state, cross-attention K/V, ...): shape, dtype, bytes;
4. fits, per layer and per tensor, ``bytes(ctx) = fixed + per_token * min(ctx, plateau)`` from
   those measurements and checks the fit on the remaining lengths.

Bytes are per sequence (measured at batch 2 and divided by 2, after checking the batch
dimension). The numbers follow transformers' own conventions (what its cache object holds),
which differ from what serving engines allocate in several documented ways; read
docs/crosscheck.md before comparing them with anything.

Output: tests/data/transformers_crosscheck/<config-file-stem>.json and INDEX.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    CONFIG_MAPPING,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    DynamicCache,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING,
    MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING,
)

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "configs" / "models"
OUT_DIR = REPO_ROOT / "tests" / "data" / "transformers_crosscheck"

BATCH = 2
SMALL_CTX = (1, 7)
# Used when no layer has a window (kept small: reference SSM scans loop per token on meta).
DEFAULT_BIG_CTX = 263
WINDOW_MARGIN = 37  # big context = largest window + margin, so every window is passed
SECOND_BIG_OFFSET = 16  # a second big context, 16 tokens lower, to confirm a plateau is flat
# Extra contexts measured when some tensor does not follow fixed + slope * min(ctx, plateau)
# (compressed attention: one entry per r tokens, remainder buffers of ctx mod r tokens).
EXTRA_CTX_IF_IRREGULAR = (1031, 2047, 4099)  # 2047 = 2^11 - 1 separates power-of-2 ratios

# Attribute names on transformers cache-layer objects -> the kind of state they hold.
TENSOR_KIND = {
    "keys": "k",
    "values": "v",
    "indexer_keys": "indexer_k",
    "conv_states": "conv_state",
    "recurrent_states": "recurrent_state",
}
# Bookkeeping tensors a layer holds that are not cached activations (positions, window scalars).
BOOKKEEPING_SUFFIXES = ("position_ids",)


def sha256_file(path: Path) -> str:
    """Content hash of the config file, so a fixture can be matched to the exact config."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_files(dirs: list[Path]) -> list[Path]:
    """All HF config JSONs in the given directories; ``*.params.json`` (Meta format) skipped."""
    files: list[Path] = []
    for d in dirs:
        for p in sorted(d.glob("*.json")):
            if p.name.endswith(".params.json"):
                continue
            files.append(p)
    return files


def load_config(path: Path) -> tuple[Any, dict[str, Any]]:
    """Build a transformers config object from a config.json; LookupError if unsupported."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise LookupError("no model_type key: not a Hugging Face config.json")
    model_type = raw["model_type"]
    if model_type not in CONFIG_MAPPING:
        extra = "; the config has auto_map" if "auto_map" in raw else ""
        raise LookupError(
            f"model_type {model_type!r} is not in transformers {transformers.__version__}: "
            f"the model needs its repository's own code (trust_remote_code){extra}"
        )
    cfg = CONFIG_MAPPING[model_type].from_dict(dict(raw))
    return cfg, raw


def config_dtype(cfg: Any, raw: dict[str, Any]) -> tuple[torch.dtype, str]:
    """Checkpoint dtype from ``torch_dtype``/``dtype``; transformers' default float32 if absent."""
    sub = raw.get("text_config")
    text: dict[str, Any] = sub if isinstance(sub, dict) else {}
    for where, d in (("", raw), ("text_config.", text)):
        for key in ("dtype", "torch_dtype"):
            val = d.get(key)
            if isinstance(val, str) and hasattr(torch, val):
                return getattr(torch, val), f"config key {where}{key!r}"
    val = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None)
    if isinstance(val, torch.dtype):
        return val, "config object"
    if isinstance(val, str) and hasattr(torch, val):
        return getattr(torch, val), "config object"
    return torch.float32, "absent in config: transformers default float32"


def pick_model(cfg: Any) -> tuple[Any, str, Any]:
    """What to build: the causal LM of the config, or (multimodal) of its text decoder.

    Returns (config, how it was chosen, model class). When the text decoder has no causal-LM
    class of its own, the whole image-text model is built and run on text only.
    """
    text_cfg = cfg.get_text_config(decoder=True)
    if text_cfg is not cfg and type(text_cfg) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return text_cfg, "text_config", AutoModelForCausalLM
    if type(cfg) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return cfg, "config", AutoModelForCausalLM
    if type(text_cfg) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return text_cfg, "text_config", AutoModelForCausalLM
    if type(cfg) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        return cfg, "full_multimodal_model_text_only_forward", AutoModelForImageTextToText
    raise LookupError(f"no causal-LM or image-text-to-text class for {type(cfg).__name__}")


def cross_attention_inputs(cfg: Any, lm_cfg: Any, dtype: torch.dtype) -> tuple[dict, set[int], str]:
    """Encoder states for decoder layers that cross-attend (Llama-3.2-Vision / mllama).

    Their cache holds K/V of the encoder tokens, not of the text, so a text-only forward leaves
    them empty. One image at the maximum tile count is fed: tiles * ((image / patch)^2 + 1)
    vision tokens (transformers' MllamaVisionModel num_patches, class token included).
    """
    text_cfg = lm_cfg.get_text_config(decoder=True)
    layers = getattr(text_cfg, "cross_attention_layers", None)
    vis = getattr(cfg, "vision_config", None)
    if not layers or vis is None:
        return {}, set(), ""
    n_tok = vis.max_num_tiles * ((vis.image_size // vis.patch_size) ** 2 + 1)
    states = torch.zeros((BATCH, n_tok, text_cfg.hidden_size), dtype=dtype, device="meta")
    note = (
        f"cross-attention layers {sorted(layers)} fed one image at max_num_tiles="
        f"{vis.max_num_tiles}: {n_tok} encoder tokens"
    )
    return {"cross_attention_states": states}, set(layers), note


@contextlib.contextmanager
def quiet() -> Any:
    """Silence transformers' deprecation chatter while building and running models."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(buf):
            yield


def build(cfg: Any, dtype: torch.dtype, cls: Any = AutoModelForCausalLM) -> Any:
    """Instantiate a model on the meta device (no storage is allocated)."""
    with quiet(), torch.device("meta"):
        model = cls.from_config(cfg, dtype=dtype)
    model.eval()
    return model


def count_params(model: Any) -> dict[str, Any]:
    """Parameter counts: total (each shared tensor once), input embedding, lm_head, tying."""
    total = sum(p.numel() for p in model.parameters())
    total_with_dups = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    emb_w = getattr(emb, "weight", None)
    out_w = getattr(out, "weight", None) if out is not None else None
    tied = emb_w is not None and out_w is not None and out_w is emb_w
    res: dict[str, Any] = {
        "total": int(total),
        "total_counting_shared_tensors_twice": int(total_with_dups),
        "embedding": int(emb_w.numel()) if emb_w is not None else None,
        "embedding_shape": list(emb_w.shape) if emb_w is not None else None,
        "lm_head": int(out_w.numel()) if out_w is not None else None,
        "lm_head_shape": list(out_w.shape) if out_w is not None else None,
        "lm_head_tied_to_embedding": bool(tied),
    }
    res["total_without_embedding"] = res["total"] - (res["embedding"] or 0)
    res["total_without_embedding_and_lm_head"] = res["total_without_embedding"] - (
        0 if tied else (res["lm_head"] or 0)
    )
    return res


def max_positions(cfg: Any) -> int | None:
    """Longest context the config declares (positional tables / ALiBi buffers are sized by it)."""
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def layer_windows(cfg: Any) -> tuple[list[str], list[int]]:
    """Cache-layer classes and windows transformers itself would use (DynamicCache(config))."""
    with quiet():
        cache = DynamicCache(config=cfg)
    classes = [type(layer).__name__ for layer in cache.layers]
    windows = sorted(
        {
            int(w)
            for layer in cache.layers
            if isinstance(w := getattr(layer, "sliding_window", None), int) and w > 0
        }
    )
    return classes, windows


def choose_contexts(cfg: Any, windows: list[int]) -> tuple[list[int], str]:
    """Context lengths to measure: 1, 7, and two lengths past the largest window (if any)."""
    big = (max(windows) + WINDOW_MARGIN) if windows else DEFAULT_BIG_CTX
    note = "largest window + margin" if windows else "no window: default"
    mp = max_positions(cfg)
    if mp is not None and big > mp:
        big = mp
        note += f"; capped at max positions {mp}"
    ctxs = sorted({*SMALL_CTX, big - SECOND_BIG_OFFSET, big})
    return ctxs, note


def iter_tensors(obj: Any, prefix: str) -> list[tuple[str, torch.Tensor]]:
    """Every tensor reachable from one cache layer's attributes (dicts/lists included)."""
    found: list[tuple[str, torch.Tensor]] = []
    for name, val in vars(obj).items():
        full = f"{prefix}{name}"
        if isinstance(val, torch.Tensor):
            found.append((full, val))
        elif isinstance(val, dict):
            for k, v in val.items():
                if isinstance(v, torch.Tensor):
                    found.append((f"{full}[{k}]", v))
        elif isinstance(val, list | tuple):
            for i, v in enumerate(val):
                if isinstance(v, torch.Tensor):
                    found.append((f"{full}[{i}]", v))
    return found


def tensor_kind(name: str) -> str | None:
    """Map an attribute path to a state kind; None for bookkeeping (not cached activations)."""
    cross = name.startswith("cross.")
    base = name.split(".", 1)[1] if cross else name
    attr = base.split("[", 1)[0]
    if attr.startswith("_") or attr.endswith(BOOKKEEPING_SUFFIXES):
        return None
    kind = TENSOR_KIND.get(attr, f"other:{attr}")
    return f"cross_{kind}" if cross else kind


def cache_layers(cache: Any) -> list[tuple[str, Any]]:
    """(prefix, layer) pairs per decoder layer; cross-attention caches get a 'cross.' prefix."""
    if hasattr(cache, "self_attention_cache"):
        selfc = [("", layer) for layer in cache.self_attention_cache.layers]
        cross = [("cross.", layer) for layer in cache.cross_attention_cache.layers]
        return [*selfc, *cross]
    if hasattr(cache, "layers"):
        return [("", layer) for layer in cache.layers]
    raise TypeError(f"cache object {type(cache).__name__} has no .layers")


def snapshot(
    model: Any, ctx: int, extra: dict | None = None, cross_layers: set[int] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Forward ``BATCH x ctx`` token ids on meta; describe every tensor the cache holds."""
    ids = torch.zeros((BATCH, ctx), dtype=torch.long, device="meta")
    with quiet(), torch.no_grad():
        out = model(input_ids=ids, use_cache=True, **(extra or {}))
    cache = out.get("cache", None)
    if cache is None:
        cache = out.get("past_key_values", None)
    if cache is None:
        raise RuntimeError("forward returned no cache object")
    layers = []
    for idx, (prefix, layer) in enumerate(cache_layers(cache)):
        tensors = {}
        for name, t in iter_tensors(layer, prefix):
            kind = tensor_kind(name)
            if kind is None:
                continue
            if cross_layers and idx in cross_layers and not kind.startswith("cross_"):
                kind = f"cross_{kind}"
            nbytes = t.numel() * t.element_size()
            if t.dim() == 0 or t.shape[0] != BATCH or nbytes % BATCH:
                raise RuntimeError(
                    f"{name}: shape {tuple(t.shape)} has no batch dimension of {BATCH}"
                )
            tensors[name] = {
                "kind": kind,
                "shape": list(t.shape),
                "dtype": str(t.dtype).removeprefix("torch."),
                "bytes_per_seq": nbytes // BATCH,
            }
        info: dict[str, Any] = {"class": type(layer).__name__, "tensors": tensors}
        w = getattr(layer, "sliding_window", None)
        if isinstance(w, int):
            info["sliding_window_attr"] = w
        layers.append(info)
    return type(cache).__name__, layers


def fit(ctxs: list[int], series: list[int]) -> dict[str, Any]:
    """Fit ``b(ctx) = fixed + per_token * min(ctx, plateau)`` to bytes measured at ``ctxs``.

    per_token and fixed come from the two small contexts (1 and 7, inside every window); the
    big contexts then either continue the line (no plateau) or sit on a flat plateau of
    ``plateau`` tokens.
    """
    c0, c1 = ctxs[0], ctxs[1]
    b0, b1 = series[0], series[1]
    if (b1 - b0) % (c1 - c0):
        return {"fit": "irregular", "raw": dict(zip(map(str, ctxs), series, strict=True))}
    per_token = (b1 - b0) // (c1 - c0)
    fixed = b0 - per_token * c0
    linear = all(fixed + per_token * c == b for c, b in zip(ctxs, series, strict=True))
    if linear:
        return {"fit": "linear", "per_token": per_token, "fixed": fixed, "plateau_tokens": None}
    big = series[2:]
    if per_token > 0 and len(set(big)) == 1 and (big[0] - fixed) % per_token == 0:
        return {
            "fit": "plateau",
            "per_token": per_token,
            "fixed": fixed,
            "plateau_tokens": (big[0] - fixed) // per_token,
        }
    return {"fit": "irregular", "raw": dict(zip(map(str, ctxs), series, strict=True))}


def held_entries(shapes: list[list[int] | None]) -> list[int] | None:
    """Entries held along the one dimension whose size changes with context (0 if absent)."""
    present = [sh for sh in shapes if sh is not None]
    if not present or any(len(sh) != len(present[0]) for sh in present):
        return None
    varying = [d for d in range(len(present[0])) if len({sh[d] for sh in present}) > 1]
    if len(varying) != 1:
        return None
    return [sh[varying[0]] if sh is not None else 0 for sh in shapes]


def fit_tensor(ctxs: list[int], series: list[int], shapes: list[list[int] | None]) -> dict:
    """Like ``fit``, plus two shapes compressed attention produces (DeepSeek-V4 style).

    compressed: one entry per ``ratio`` tokens, ``held = ctx // ratio``;
    remainder: a buffer of the tokens not yet compressed, ``held = ctx % ratio``.
    """
    f = fit(ctxs, series)
    if f["fit"] != "irregular":
        return f
    if series[0] == 0 and len(set(series[1:])) == 1:
        # allocated on the second forward token onward, then constant (an overlap window)
        return f | {"fit": "constant_after_first_token", "per_token": 0, "fixed": series[1]}
    held = held_entries(shapes)
    if held is None or max(held) == 0:
        return f
    per_entry = {b // h for b, h in zip(series, held, strict=True) if h}
    if len(per_entry) != 1 or any(
        b != h * min(per_entry) for b, h in zip(series, held, strict=True)
    ):
        return f
    entry = per_entry.pop()
    big = max(ctxs)
    pairs = list(zip(ctxs, held, strict=True))
    for kind, rs in (
        ("compressed", [r for r in range(2, big + 1) if all(c // r == h for c, h in pairs)]),
        (
            "remainder",
            [r for r in range(max(held) + 1, big + 1) if all(c % r == h for c, h in pairs)],
        ),
    ):
        if rs:
            out = f | {"fit": kind, "ratio": rs[0], "bytes_per_entry": entry}
            if len(rs) > 1:  # the measured contexts do not pin the ratio down
                out["ratio_candidates"] = rs if len(rs) <= 8 else [*rs[:8], "..."]
            return out
    return f | {"held_by_ctx": dict(zip(map(str, ctxs), held, strict=True))}


def analyse_cache(
    model: Any, ctxs: list[int], extra: dict | None = None, cross_layers: set[int] | None = None
) -> dict[str, Any]:
    """Measure the cache at each context, fit every (layer, tensor) series, group layers."""
    snaps = []
    cache_class = None
    for c in ctxs:
        cache_class, layers = snapshot(model, c, extra, cross_layers)
        snaps.append(layers)
    n_layers = len(snaps[0])
    per_layer = []
    groups: dict[str, dict[str, Any]] = {}
    signature_to_group: dict[str, str] = {}
    totals_by_ctx = {str(c): 0 for c in ctxs}
    kind_totals: dict[str, dict[str, int]] = {}
    for i in range(n_layers):
        cls = snaps[0][i]["class"]
        names = sorted(set().union(*(s[i]["tensors"].keys() for s in snaps)))
        comps: dict[str, Any] = {}
        layer_series = [0] * len(ctxs)
        for name in names:
            series = [s[i]["tensors"].get(name, {}).get("bytes_per_seq", 0) for s in snaps]
            entries = [s[i]["tensors"].get(name) for s in snaps]
            first = next(e for e in entries if e is not None)
            f = fit_tensor(ctxs, series, [e["shape"] if e else None for e in entries])
            comps[name] = {
                "kind": first["kind"],
                "dtype": first["dtype"],
                "shape_by_ctx": {
                    str(c): (e["shape"] if e else None) for c, e in zip(ctxs, entries, strict=True)
                },
                **f,
            }
            for j, b in enumerate(series):
                layer_series[j] += b
            kt = kind_totals.setdefault(first["kind"], {str(c): 0 for c in ctxs})
            for c, b in zip(ctxs, series, strict=True):
                kt[str(c)] += b
        lf = fit(ctxs, layer_series)
        for c, b in zip(ctxs, layer_series, strict=True):
            totals_by_ctx[str(c)] += b
        window_attr = snaps[0][i].get("sliding_window_attr")
        small = str(ctxs[1])
        sig = json.dumps(
            [
                cls,
                window_attr,
                {
                    n: {k: v for k, v in d.items() if k != "shape_by_ctx"}
                    | {"shape_small": d["shape_by_ctx"][small]}
                    for n, d in comps.items()
                },
            ],
            sort_keys=True,
        )
        if sig not in signature_to_group:
            base = cls
            same = [g for g in groups if g == base or g.startswith(base + "#")]
            gname = base if not same else f"{base}#{len(same) + 1}"
            signature_to_group[sig] = gname
            groups[gname] = {
                "class": cls,
                "sliding_window_attr": window_attr,
                "layers": [],
                "per_token": lf.get("per_token"),
                "fixed": lf.get("fixed"),
                "plateau_tokens": lf.get("plateau_tokens"),
                "fit": lf["fit"],
                "tensors": {
                    n: {
                        "kind": d["kind"],
                        "dtype": d["dtype"],
                        "shape_by_ctx": d["shape_by_ctx"],
                        "fit": d["fit"],
                        "per_token": d.get("per_token"),
                        "fixed": d.get("fixed"),
                        "plateau_tokens": d.get("plateau_tokens"),
                        **{
                            k: d[k]
                            for k in (
                                "ratio",
                                "ratio_candidates",
                                "bytes_per_entry",
                                "raw",
                                "held_by_ctx",
                            )
                            if k in d
                        },
                    }
                    for n, d in comps.items()
                },
            }
        gname = signature_to_group[sig]
        groups[gname]["layers"].append(i)
        per_layer.append([gname, lf.get("per_token"), lf.get("fixed"), lf.get("plateau_tokens")])
    return {
        "cache_class": cache_class,
        "num_cache_layers": n_layers,
        "totals_bytes_per_seq_by_ctx": totals_by_ctx,
        "totals_by_kind_bytes_per_seq_by_ctx": kind_totals,
        "sum_per_token_all_layers": sum(p[1] or 0 for p in per_layer),
        "sum_per_token_unwindowed_layers": sum(p[1] or 0 for p in per_layer if p[3] is None),
        "sum_fixed_all_layers": sum(p[2] or 0 for p in per_layer),
        "groups": groups,
        "per_layer_columns": ["group", "bytes_per_token", "fixed_bytes", "window_tokens_held"],
        "per_layer": per_layer,
    }


def structure_only(cfg: Any) -> dict[str, Any]:
    """Fallback when forward on meta fails: the cache-layer classes transformers would create."""
    classes, windows = layer_windows(cfg)
    return {"layer_classes": classes, "windows": windows}


def short_error(exc: BaseException) -> str:
    """One-line error: exception type, message (trimmed), and the innermost transformers frame."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(tb):
        if "site-packages/transformers/" in fr.filename:
            where = f" at {fr.filename.split('site-packages/')[-1]}:{fr.lineno} ({fr.name})"
            break
    return f"{type(exc).__name__}: {msg[:300]}{where}"


def process(path: Path) -> dict[str, Any]:
    """Everything for one config file; never raises (errors are recorded in the result)."""
    res: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stem": path.stem,
        "config_file": path.name,
        "config_sha256": sha256_file(path),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "batch_measured": BATCH,
        "bytes_unit": "bytes per sequence (measured at batch 2, divided by 2)",
        "errors": [],
        "notes": [],
    }
    try:
        cfg, raw = load_config(path)
    except LookupError as exc:
        res["status"] = "unsupported"
        res["model_type"] = None
        res["errors"].append(short_error(exc))
        return res
    except Exception as exc:
        # e.g. a transformers config validator rejecting the values
        res["status"] = "unsupported"
        res["model_type"] = json.loads(path.read_text()).get("model_type")
        cause = exc.__cause__
        res["errors"].append(
            "config rejected by transformers: "
            + short_error(exc).splitlines()[0]
            + (f" (cause: {type(cause).__name__}: {cause})" if cause else "")
        )
        return res
    res["model_type"] = raw["model_type"]
    dtype, dsrc = config_dtype(cfg, raw)
    res["dtype"] = str(dtype).removeprefix("torch.")
    res["dtype_source"] = dsrc
    try:
        lm_cfg, built_from, model_cls = pick_model(cfg)
        model = build(lm_cfg, dtype, model_cls)
    except Exception as exc:
        res["status"] = "unsupported"
        res["errors"].append("build: " + short_error(exc))
        return res
    res["built_class"] = type(model).__name__
    res["built_from"] = built_from
    res["text_config_class"] = type(lm_cfg).__name__
    res["params"] = count_params(model)
    if built_from == "full_multimodal_model_text_only_forward":
        res["notes"].append(
            "the text decoder has no causal-LM class: the whole image-text model was built "
            "(params are for all of it) and run on text only (the cache is the text decoder's)"
        )
        dec = model.get_decoder() if hasattr(model, "get_decoder") else None
        if dec is not None:
            lm = res["params"]["lm_head"] or 0
            res["params_text_decoder"] = {
                "class": type(dec).__name__,
                "total_with_lm_head": int(sum(p.numel() for p in dec.parameters()))
                + (0 if res["params"]["lm_head_tied_to_embedding"] else lm),
            }
    if built_from == "text_config":
        res["notes"].append("multimodal config: params and cache are for the text decoder only")
        # the whole model, vision tower and lm_head included (AutoModel would drop the lm_head)
        full_cls = (
            AutoModelForImageTextToText
            if type(cfg) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
            else AutoModel
        )
        try:
            full = build(cfg, dtype, full_cls)
            out = full.get_output_embeddings() if hasattr(full, "get_output_embeddings") else None
            inp = full.get_input_embeddings()
            tied = out is not None and getattr(out, "weight", None) is getattr(inp, "weight", 0)
            res["params_full_model"] = {
                "class": type(full).__name__,
                "total": int(sum(p.numel() for p in full.parameters())),
                "has_lm_head": out is not None,
                "lm_head_tied_to_embedding": bool(tied),
            }
            if bool(tied) != res["params"]["lm_head_tied_to_embedding"]:
                res["notes"].append(
                    "the whole model and its text decoder disagree on lm_head tying "
                    "(top-level vs text_config tie_word_embeddings, or a class default)"
                )
            del full
        except Exception as exc:
            res["errors"].append("full multimodal model build: " + short_error(exc))
    mtp = raw.get("num_nextn_predict_layers") or raw.get("mtp_num_hidden_layers")
    if mtp:
        res["notes"].append(
            f"config declares {mtp} multi-token-prediction layer(s); transformers does not "
            "build them, so they are in neither params nor cache"
        )
    try:
        classes, windows = layer_windows(lm_cfg)
    except Exception as exc:
        classes, windows = [], []
        res["errors"].append("DynamicCache(config): " + short_error(exc))
    ctxs, ctx_note = choose_contexts(lm_cfg, windows)
    extra, cross_layers, cross_note = cross_attention_inputs(cfg, lm_cfg, dtype)
    if cross_note:
        res["notes"].append(cross_note)
    res["contexts_measured"] = ctxs
    res["contexts_note"] = ctx_note
    res["windows_from_cache_layers"] = windows
    try:
        try:
            cache = analyse_cache(model, ctxs, extra, cross_layers)
        except RuntimeError as exc:
            # grouped_mm has no meta/float32 path; the MoE implementation changes no cache tensor.
            if "grouped_mm" not in short_error(exc) or not hasattr(
                model, "set_experts_implementation"
            ):
                raise
            res["notes"].append(
                "forward with the default experts implementation failed on meta "
                f"({short_error(exc)}); reran with experts_implementation='batched_mm' "
                "(MoE math only, the cache is unaffected)"
            )
            model.set_experts_implementation("batched_mm")
            cache = analyse_cache(model, ctxs, extra, cross_layers)
        if any(g["fit"] == "irregular" for g in cache["groups"].values()):
            mp = max_positions(lm_cfg)
            more = [c for c in EXTRA_CTX_IF_IRREGULAR if c > max(ctxs) and (mp is None or c <= mp)]
            if more:
                ctxs = sorted({*ctxs, *more})
                res["contexts_note"] += f"; extended with {more} (some tensor was not linear)"
                cache = analyse_cache(model, ctxs, extra, cross_layers)
        res["contexts_measured"] = ctxs
        res["cache"] = cache
        tensor_fits = {t["fit"] for g in cache["groups"].values() for t in g["tensors"].values()}
        res["status"] = "ok"
        if "irregular" in tensor_fits:
            res["status"] = "ok_irregular"
            bad = [g for g, d in cache["groups"].items() if d["fit"] == "irregular"]
            res["notes"].append(f"groups with a tensor no fit describes: {bad}")
        elif tensor_fits & {"compressed", "remainder", "constant_after_first_token"}:
            res["status"] = "ok_compressed"
            res["notes"].append(
                "compressed attention: some tensors hold ctx // ratio entries (fit 'compressed') "
                "or ctx % ratio tokens (fit 'remainder'), or appear from ctx > 1 on at a fixed "
                "size (fit 'constant_after_first_token'); per-layer rows of those groups are null"
            )
    except Exception as exc:
        res["errors"].append(f"forward on meta: {short_error(exc)}")
        res["status"] = "structure_only" if classes else "failed"
        if classes:
            res["cache_structure"] = {"layer_classes": classes, "windows": windows}
    del model
    return res


def dumps(obj: Any) -> str:
    """Indented JSON with every list of scalars kept on one line (small, diff-friendly fixtures)."""

    def compact(o: Any) -> Any:
        if isinstance(o, list) and all(not isinstance(x, dict | list) for x in o):
            return _Raw(json.dumps(o))
        if isinstance(o, list) and all(
            isinstance(x, list) and all(not isinstance(y, dict | list) for y in x) for x in o
        ):
            return [_Raw(json.dumps(x)) for x in o]
        if isinstance(o, list):
            return [compact(x) for x in o]
        if isinstance(o, dict):
            return {k: compact(v) for k, v in o.items()}
        return o

    marker = "\u0000RAW\u0000"
    raws: list[str] = []

    def default(o: Any) -> Any:
        if isinstance(o, _Raw):
            raws.append(o.text)
            return f"{marker}{len(raws) - 1}{marker}"
        raise TypeError(type(o))

    text = json.dumps(compact(obj), indent=1, default=default)
    for i, r in enumerate(raws):
        text = text.replace(json.dumps(f"{marker}{i}{marker}"), r, 1)
    return text + "\n"


class _Raw:
    """A pre-rendered JSON fragment (see dumps)."""

    def __init__(self, text: str) -> None:
        self.text = text


def index_entry(res: dict[str, Any], source_dir: str) -> dict[str, Any]:
    """One INDEX.json row."""
    entry: dict[str, Any] = {
        "file": f"{res['stem']}.json",
        "config_dir": source_dir,
        "config_sha256": res["config_sha256"],
        "model_type": res.get("model_type"),
        "status": res["status"],
    }
    if res.get("errors"):
        entry["error"] = res["errors"][0]
    if "params" in res:
        entry["params_total"] = res["params"]["total"]
    if "cache" in res:
        entry["sum_per_token_all_layers"] = res["cache"]["sum_per_token_all_layers"]
    return entry


def main(argv: list[str] | None = None) -> int:
    """Run the cross-check over configs/models and any extra directories; write fixtures + INDEX."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "extra_dirs", nargs="*", type=Path, help="extra directories of config.json copies"
    )
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--only", nargs="*", default=None, help="only these file stems")
    ap.add_argument(
        "--stale",
        action="store_true",
        help="only configs whose fixture is missing or was made from other config contents",
    )
    args = ap.parse_args(argv)
    dirs = [DEFAULT_CONFIG_DIR, *args.extra_dirs]
    args.out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, tuple[str, str]] = {}
    index_models: dict[str, Any] = {}
    shadowed = []
    for d in dirs:
        label = "configs/models" if d.resolve() == DEFAULT_CONFIG_DIR.resolve() else str(d)
        for path in config_files([d]):
            stem = path.stem
            digest = sha256_file(path)
            if stem in seen:
                if seen[stem][1] != digest:
                    shadowed.append({"stem": stem, "ignored": str(path), "kept": seen[stem][0]})
                continue
            seen[stem] = (label, digest)
            if args.only and stem not in args.only:
                continue
            old_fx = args.out / f"{stem}.json"
            if (
                args.stale
                and old_fx.exists()
                and json.loads(old_fx.read_text()).get("config_sha256") == digest
            ):
                continue
            t0 = time.time()
            try:
                res = process(path)
            except Exception as exc:  # keep going; record the failure
                res = {
                    "schema_version": SCHEMA_VERSION,
                    "stem": stem,
                    "config_file": path.name,
                    "config_sha256": digest,
                    "transformers_version": transformers.__version__,
                    "status": "failed",
                    "errors": [f"unexpected: {short_error(exc)}"],
                }
            res["config_dir"] = label
            (args.out / f"{stem}.json").write_text(dumps(res))
            index_models[stem] = index_entry(res, label)
            print(f"{res['status']:15s} {stem}  {time.time() - t0:.1f}s", flush=True)
    index_path = args.out / "INDEX.json"
    if (args.only or args.stale) and not index_models:
        print("nothing to rerun; INDEX.json left as it was")
        return 0
    if (args.only or args.stale) and index_path.exists():
        old = json.loads(index_path.read_text())
        merged = old.get("models", {})
        merged.update(index_models)
        index_models = merged
        shadowed = [
            *old.get("shadowed", []),
            *(x for x in shadowed if x not in old.get("shadowed", [])),
        ]
    models = dict(sorted(index_models.items()))
    counts: dict[str, int] = {}
    for e in models.values():
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    index: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
        "script": "scripts/crosscheck_transformers.py",
        "config_dirs": [
            "configs/models" if d.resolve() == DEFAULT_CONFIG_DIR.resolve() else str(d)
            for d in dirs
        ],
        "batch_measured": BATCH,
        "status_counts": dict(sorted(counts.items())),
        "shadowed": shadowed,
        "models": models,
    }
    index_path.write_text(dumps(index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
