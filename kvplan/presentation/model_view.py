"""Rendering of model geometry, `kvplan size` and `kvplan models`."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from kvplan.core.dtypes import DTYPE_BYTES, DTYPE_NOTES
from kvplan.core.geometry import LayerKind, Mixer, ModelSpec
from kvplan.core.kv_formats import INDEXER_FORMATS
from kvplan.core.kvcache import LayerGroup
from kvplan.core.sizing import SizeReport
from kvplan.units import fmt_bytes, fmt_count, fmt_gib, fmt_tokens

if TYPE_CHECKING:
    from rich.console import RenderableType


def geometry_fields(spec: ModelSpec) -> dict[str, Any]:
    return {
        "model": spec.name,
        "family": spec.family,
        "layers": spec.num_layers,
        "query_heads": spec.query_heads,
        "kv_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "v_head_dim": spec.v_head_dim,
        "attention": spec.layout.value,
        "layer_kinds": spec.layer_summary(),
        "mla": spec.mla.model_dump() if spec.mla else None,
        "max_position_embeddings": spec.max_position_embeddings,
        "assumptions": list(spec.assumptions),
    }


def size_json(
    report: SizeReport,
    *,
    source: str,
    location: str,
    revision: str | None,
    exact_weight_bytes: int | None = None,
    model_note: str | None = None,
) -> dict[str, Any]:
    """`weight_bytes` is the checkpoint's exact size when its safetensors headers were read,
    else the architecture estimate; both figures are also given on their own."""
    spec = report.spec
    return {
        **geometry_fields(spec),
        "source": source,
        "location": location,
        "revision": revision,
        "model_note": model_note,
        "params": report.params.total,
        "active_params": report.params.active,
        "vision_params": report.params.vision,
        "vision_encoder": _vision_json(spec),
        "weight_bytes": report.weight_bytes if exact_weight_bytes is None else exact_weight_bytes,
        "weights_exact_bytes": exact_weight_bytes,
        "weights_estimate_bytes": report.weight_bytes,
        "weight_dtype": report.weight_dtype,
        "weight_groups": [g.model_dump() for g in report.weight_groups],
        "kv_dtype": report.kv_dtype,
        "kv_bytes_per_element": str(DTYPE_BYTES[report.kv_dtype]),
        "indexer_format": spec.indexer_format,
        "ctx": report.ctx,
        "batch": report.batch,
        "kv_bytes_per_token": report.kv_bytes_per_token,
        "kv_bytes_per_sequence": report.kv_bytes_per_sequence,
        "kv_bytes": report.kv_bytes,
        "state_bytes_per_sequence": report.state_bytes_per_sequence,
        "fixed_state_bytes_per_sequence": report.state_bytes_per_sequence,
        "layer_groups": [g.model_dump(mode="json") for g in report.groups],
        "layers_by_kind": layers_by_kind(report),
        "variants": [v.model_dump() for v in report.variants],
    }


def _vision_json(spec: ModelSpec) -> dict[str, Any] | None:
    """The image encoder of a multimodal checkpoint: counted in `weight_bytes` (engines load
    it), not in `params` (the text decoder's)."""
    v = spec.vision
    if v is None:
        return None
    return {"family": v.family, "counted": v.counted, "params": v.params}


def _dtype_label(dtype: str) -> str:
    size = DTYPE_BYTES[dtype]
    return f"{dtype} ({size} B/elem)" if size.denominator != 1 else f"{dtype} ({size} B)"


def layers_by_kind(report: SizeReport) -> list[dict[str, Any]]:
    """One entry per kind of layer: how many, what each caches per token and per sequence."""
    out = []
    for g in report.groups:
        per_token = g.bytes_per_token or 0
        out.append(
            {
                "kind": g.label,
                "mixer": g.mixer.value,
                "cache": g.kind.value,
                "layers": g.layers,
                "window": g.window,
                "kv_heads": g.kv_heads,
                "head_dim": g.head_dim,
                "v_head_dim": g.v_head_dim,
                "elements_per_token": g.elements_per_token,
                "bytes_per_token": per_token,
                "bytes_per_token_all_layers": per_token * g.layers,
                "tokens_held": g.tokens_held,
                "compress_ratio": g.compress_ratio or None,
                "compressed_entries_held": g.entries_held,
                "compressed_entry_elements": g.entry_elements,
                "state_bytes_per_sequence": g.state_bytes,
                "state_bytes_per_sequence_all_layers": g.state_bytes * g.layers,
            }
        )
    return out


def _indexer_in_own_format(spec: ModelSpec, g: LayerGroup) -> bool:
    return bool(g.index_elements) and spec.indexer_format is not None


def _group_token_bytes(spec: ModelSpec, g: LayerGroup, b: Fraction) -> int:
    """Bytes per token of a group's layers: elements at the KV dtype, an indexer key (DSA,
    MiniMax-M3 sparse attention) in the engine's format when one applies."""
    if _indexer_in_own_format(spec, g):
        kv_part = int(g.layers * (g.elements_per_token - g.index_elements) * b)
        return kv_part + g.layers * (g.index_bytes_per_token or 0)
    return int(g.layers * g.elements_per_token * b)


def _per_token_terms(spec: ModelSpec, g: LayerGroup) -> str:
    if g.kind is LayerKind.MLA:
        assert spec.mla is not None
        extra = g.elements_per_token - spec.mla.latent_dim
        indexer = f" + indexer {extra}" if extra and not _indexer_in_own_format(spec, g) else ""
        return f"(kv_lora_rank {spec.mla.kv_lora_rank} + rope {spec.mla.qk_rope_head_dim}{indexer})"
    kv = (
        f"2 · G {g.kv_heads} · d_head {g.head_dim}"
        if g.head_dim == g.v_head_dim
        else f"G {g.kv_heads} · (d_k {g.head_dim} + d_v {g.v_head_dim})"
    )
    if g.index_elements and not _indexer_in_own_format(spec, g):
        return f"({kv} + indexer {g.index_elements})"  # MiniMax-M3 sparse attention
    return kv


def formula_lines(report: SizeReport) -> list[str]:
    """The per-token formula with this model's numbers, one line per kind of layer."""
    spec = report.spec
    b = DTYPE_BYTES[report.kv_dtype]
    lines = []
    for g in report.groups:
        if g.kind is LayerKind.NONE:
            if g.state_bytes:
                lines.append(
                    f"{g.layers} {g.label} layers: nothing per token; fixed state "
                    f"{g.state_bytes:,} B/sequence each ({g.state_elements:,} elements) = "
                    f"{g.layers * g.state_bytes:,} B"
                )
            else:
                lines.append(f"{g.layers} {g.label} layers: nothing cached")
            continue
        if g.mixer is Mixer.COMPRESSED:
            window = g.window or g.tokens_held
            line = (
                f"{g.layers} {g.label} layers × K+V 2 · d {g.head_dim} · {b} B = "
                f"{int(g.layers * g.elements_per_token * b):,} B/token for the last "
                f"{window:,} tokens"
            )
            if g.compress_ratio:
                line += (
                    f", + ⌊ctx/{g.compress_ratio}⌋ = {g.entries_held:,} entries × "
                    f"{g.entry_elements} elements · {b} B"
                )
            if g.state_bytes:
                line += f"; compressor state {g.state_bytes:,} B/sequence each"
            lines.append(line)
            continue
        held = "" if g.window is None else f", holding at most {g.window:,} tokens"
        terms_b = f"{_per_token_terms(spec, g)} · {b} B"
        if _indexer_in_own_format(spec, g):
            fmt = INDEXER_FORMATS[spec.indexer_format or ""]
            terms_b = (
                f"({terms_b} + indexer {g.index_elements} → {g.index_bytes_per_token} B "
                f"[{fmt.name}: {fmt.note}])"
            )
        lines.append(
            f"{g.layers} {g.label} layers × {terms_b} = "
            f"{_group_token_bytes(spec, g, b):,} B/token{held}"
        )
    terms = [
        f"{_group_token_bytes(spec, g, b):,} × {g.tokens_held:,}"
        for g in report.groups
        if g.kind is not LayerKind.NONE
    ] + [
        f"{int(g.layers * g.entry_elements * b):,} × {g.entries_held:,}"
        for g in report.groups
        if g.compress_ratio
    ]
    state = report.state_bytes_per_sequence
    seq = " + ".join(terms) + (f" + state {state:,}" if state else "")
    lines.append(
        f"per sequence at {report.ctx:,} tokens: {seq} = "
        f"{report.kv_bytes_per_sequence:,} B; × batch {report.batch:,} = "
        f"{report.kv_bytes:,} B"
    )
    return lines


def render_size(
    report: SizeReport,
    *,
    source: str,
    location: str,
    exact_weight_bytes: int | None = None,
    model_note: str | None = None,
) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    spec = report.spec
    header = Text.assemble((spec.name, "bold"), (f"  from {source}: {location}", "dim"))
    geo = Table(show_header=False, box=None, pad_edge=False)
    geo.add_column(style="bold")
    geo.add_column()
    if spec.mla is not None:
        geo.add_row(
            "attention",
            f"MLA: H={spec.query_heads} query heads attend over one "
            "compressed latent per token (no per-head K/V cached)",
        )
    else:
        own = {spec.layer_kv_heads(x) for x in spec.layers if x.is_attention}
        per_layer = "; G differs by layer kind, see below" if len(own) > 1 else ""
        geo.add_row(
            "attention",
            f"{spec.layout.value.upper()}: H={spec.query_heads} query "
            f"heads, G={spec.kv_heads} KV heads ({spec.group_size} query head"
            f"{'s' if spec.group_size != 1 else ''} per KV head){per_layer}",
        )
    geo.add_row("layers", f"L={spec.num_layers}: {spec.layer_summary()}")
    dims = f"d_head={spec.head_dim}" + (
        f", d_v={spec.v_head_dim}" if spec.v_head_dim != spec.head_dim else ""
    )
    if spec.mla:
        dims += (
            f"; MLA latent {spec.mla.kv_lora_rank} + rope {spec.mla.qk_rope_head_dim} "
            f"= {spec.mla.latent_dim} cached elements/token/layer"
        )
    geo.add_row("head dims", dims)
    params = f"{fmt_count(report.params.total)} parameters"
    if report.params.active != report.params.total:
        params += f" ({fmt_count(report.params.active)} active per token)"
    if report.params.vision:
        params += f" + {fmt_count(report.params.vision)} in the vision encoder"
    formats = {g.format for g in report.weight_groups if g.group != "other"}
    label = report.weight_dtype if len(formats) <= 1 else "mixed precision"
    estimate = f"{fmt_gib(report.weight_bytes)} at {label} ({report.weight_bytes:,} bytes)"
    if exact_weight_bytes is None:
        geo.add_row("weights", f"{params} = {estimate}")
    else:
        geo.add_row(
            "weights",
            f"{fmt_gib(exact_weight_bytes)} exact, from the checkpoint's "
            f"safetensors headers ({exact_weight_bytes:,} bytes)",
        )
        geo.add_row("", f"estimate: {params} = {estimate}")
    if spec.vision is not None and not spec.vision.counted:
        geo.add_row("", f"vision encoder ({spec.vision.family}): not counted, no reader for it")
    if report.weight_groups:
        by_group = [
            f"{g.group} {fmt_gib(g.bytes)} {g.format}"
            for g in sorted(report.weight_groups, key=lambda g: -g.bytes)
            if g.group != "other"
        ]
        geo.add_row("by group", ", ".join(by_group))
    if spec.max_position_embeddings:
        geo.add_row("max context", f"{spec.max_position_embeddings:,} tokens")

    kv = Table(
        title=f"KV cache ({_dtype_label(report.kv_dtype)}, ctx {report.ctx:,}, "
        f"batch {report.batch:,})",
        title_justify="left",
    )
    kv.add_column("")
    kv.add_column("bytes", justify="right")
    kv.add_column("size", justify="right")
    windows = [layer.window for layer in report.spec.layers if layer.window]
    smallest = min(windows) if windows else None
    if smallest is not None and report.ctx > smallest:
        # below the smallest window every layer grows; beyond it windowed layers stop, so
        # the rate that matters at this context is the per-sequence bytes over the context
        kv.add_row(
            f"per token (below {smallest:,} tokens)",
            f"{report.kv_bytes_per_token:,}",
            fmt_bytes(report.kv_bytes_per_token),
        )
        tokens = report.kv_bytes_per_sequence - report.state_bytes_per_sequence
        effective = tokens // report.ctx
        kv.add_row(
            f"per token, effective at {report.ctx:,}",
            f"{effective:,}",
            fmt_bytes(effective),
        )
    else:
        kv.add_row(
            "per token", f"{report.kv_bytes_per_token:,}", fmt_bytes(report.kv_bytes_per_token)
        )
    kv.add_row(
        f"per sequence ({fmt_tokens(report.ctx)} tokens)",
        f"{report.kv_bytes_per_sequence:,}",
        fmt_gib(report.kv_bytes_per_sequence),
    )
    kv.add_row(f"batch of {report.batch:,}", f"{report.kv_bytes:,}", fmt_gib(report.kv_bytes))
    if report.state_bytes_per_sequence:
        kv.add_row(
            "  of which fixed state / seq",
            f"{report.state_bytes_per_sequence:,}",
            fmt_bytes(report.state_bytes_per_sequence),
        )

    parts: list[RenderableType] = [header, geo, Text(""), kv]
    formula = Text("Formula (bytes per token per kind of layer, then per sequence):", style="bold")
    parts.append(formula)
    for line in formula_lines(report):
        parts.append(Text("  " + line))
    if report.variants:
        var = Table(title="What G buys (same model, other KV-head counts)", title_justify="left")
        var.add_column("layout")
        var.add_column("G", justify="right")
        var.add_column("KV / token", justify="right")
        var.add_column(f"KV for batch {report.batch:,} @ {fmt_tokens(report.ctx)}", justify="right")
        var.add_column("vs actual", justify="right")
        var.add_row(
            f"{spec.layout.value.upper()} (actual)",
            "latent" if spec.mla else str(spec.kv_heads),
            fmt_bytes(report.kv_bytes_per_token),
            fmt_gib(report.kv_bytes),
            "1.00×",
            style="bold",
        )
        for v in report.variants:
            if v.kv_heads == spec.kv_heads and spec.mla is None:
                continue
            var.add_row(
                v.label,
                str(v.kv_heads),
                fmt_bytes(v.kv_bytes_per_token),
                fmt_gib(v.kv_bytes),
                f"{v.ratio_to_actual:.2f}×",
            )
        parts += [Text(""), var]
    note = DTYPE_NOTES.get(report.kv_dtype)
    if note:
        parts.append(Text(f"{report.kv_dtype}: {note}", style="dim"))
    for assumption in spec.assumptions:
        parts.append(Text(f"assumed: {assumption}", style="yellow"))
    if model_note:
        parts.append(Text(f"note: {model_note}", style="yellow"))
    parts.append(Text("GiB = 2^30 bytes.", style="dim"))
    return Group(*parts)


def group_label(group: LayerGroup) -> str:
    return group.kind.value if group.window is None else f"{group.kind.value}({group.window})"
