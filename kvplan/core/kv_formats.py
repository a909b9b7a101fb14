"""Quantized KV-cache formats with their real bytes, named as the engines name them.

Each format is an exact number of bytes per cached element, scales included, so the page
math stays exact integer arithmetic:

  fp8 (fp8_e4m3, fp8_e5m2)   1 B; one scale per tensor (per layer: negligible, not counted)
                             (vllm/utils/torch_utils.py STR_DTYPE_TO_TORCH_DTYPE: uint8).
  nvfp4                      4-bit values + one fp8 scale per 16 values: head/2 + head/16
                             bytes per K and per V vector = 9/16 B per element
                             (vLLM nvfp4_kv_cache_full_dim; the per-tensor global scale is
                             not per token). A layout that also keeps an fp32 scale per row
                             (76 B per 128-wide row, FlashML-org/FreeToken#408) is +1/32.
  int8_per_token_head,       1 B values + one fp32 scale per token, head and K/V vector:
  fp8_per_token_head         (head_dim + 4) / head_dim B per element; resolved per head dim.
  fp8_ds_mla                 DeepSeek-V3.2 sparse MLA: 656 B per token per layer for the
                             576-wide latent (512 fp8 no-RoPE values + 4 fp32 tile scales
                             + 64 bf16 RoPE values) (vLLM mla_attention.py
                             MLAAttention.get_kv_cache_spec; vllm-kv-rules.md sec. 3).
  nvfp4_ds_mla               352 B per token per layer in vLLM 0.33 (same source); forks
                             use other layouts (400 B, 432 B: local-inference-lab/vllm#82).

The two DeepSeek formats exist only for a 576-wide MLA latent; the deployment parser
refuses them elsewhere (fail closed).

DSA indexer keys (DeepSeek-V3.2, GLM-5: `index_head_dim` per token and layer) have a format
of their own, chosen by the engine whatever `--kv-cache-dtype` is (`INDEXER_FORMATS`; the
engine's rule names one, `EngineRules.indexer_format`):

  fp8_block128   1-byte fp8 values + one 4-byte fp32 scale per 128 values, stored as uint8:
                 index_head_dim + index_head_dim // 128 * 4 bytes per token per layer
                 (132 B for index_head_dim 128).
                 vLLM: vllm/model_executor/models/deepseek_v2.py `Indexer.__init__` builds
                 `DeepseekV32IndexerCache(head_dim=head_dim + head_dim // quant_block_size
                 * 4, dtype=torch.uint8)` with quant_block_size = 128, and its
                 `get_kv_cache_spec` returns an `MLAAttentionSpec(num_kv_heads=1,
                 head_size=that, dtype=uint8)` (vllm-project/vllm@002d6073aa03).
                 SGLang: python/sglang/srt/model_executor/pool_configurator.py
                 `DefaultPoolConfigurator._compute_cell_size` adds `index_head_dim +
                 index_head_dim // DSATokenToKVPool.quant_block_size * 4` bytes of
                 `index_k_with_scale_buffer_dtype` (uint8) per layer to the cell size
                 (sgl-project/sglang@003fca802738).
                 TensorRT-LLM: tensorrt_llm/_torch/attention_backend/sparse/dsa.py
                 `DSACacheManager` (enable_indexer_k_cache, indexer_k_cache_quant_block_size
                 = 128; pool row index_head_dim fp8 + scale_size) (NVIDIA/TensorRT-LLM@
                 eaf502624e92, read second-hand from an excerpt).
  None           the KV dtype: transformers' `DynamicIndexedLayer` keeps the keys in the
                 model dtype (docs/crosscheck.md), kvplan's convention without an engine.

MiniMax-M3 sparse-attention index keys (`sparse_attention_config.sparse_index_dim` per token
on each sparse layer, one head, not split by TP) are kept in 16-bit by the engines
(`EngineRules.msa_index_format`):

  bf16           2 bytes per element, no scales: index_head_dim * 2 B per token per layer
                 (256 B for 128).
                 vLLM: vllm/models/minimax_m3/common/indexer.py `MiniMaxM3IndexerCache`
                 (indexer_kv_dtype default "bf16" -> torch.bfloat16; "fp8"/"fp8_e4m3" only
                 when asked for) returns `MLAAttentionSpec(num_kv_heads=1,
                 head_size=head_dim, dtype=self.dtype)` (vllm-project/vllm@545393a3abcb).
                 SGLang: pool_configurator.py `DefaultPoolConfigurator._compute_cell_size`,
                 MiniMax branch: `(num_indexer_kv * 2 + num_indexer_k_only) *
                 indexer_head_dim * element_size(kvc.model_dtype)` — the model dtype, 2 B
                 for MiniMax-M3's bf16 checkpoint (sgl-project/sglang@003fca802738).
  bf16_or_fp32   the same 2 bytes, but 4 when the KV cache itself is fp32.
                 TensorRT-LLM: tensorrt_llm/_torch/attention_backend/sparse/minimax_m3/
                 cache_manager.py `MiniMaxM3KVCacheManagerV2._extra_buffers_per_layer`
                 registers one `Role.INDEX_KEY` buffer per sparse layer of
                 `1 * sparse_index_dim * elem_bytes` per token, elem_bytes from
                 `_torch_dtype_for_index_cache`: fp16 for an fp16 cache, fp32 for fp32,
                 bf16 otherwise (fp8, nvfp4 included) (NVIDIA/TensorRT-LLM@b4a375d83dff).
"""

from __future__ import annotations

from fractions import Fraction

from kvplan.core.frozen import dataclass

DS_MLA_LATENT = 576  # kv_lora_rank 512 + qk_rope_head_dim 64
PER_TOKEN_HEAD_DIMS = (32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 512)
SCALE_FP32 = 4


@dataclass(frozen=True)
class KvFormat:
    name: str  # kvplan's canonical name (the engine's own where there is one)
    bytes_per_element: Fraction
    note: str
    mla_latent: int | None = None  # only valid for an MLA latent of this width
    head_dim: int | None = None  # per-token-head formats: resolved for this head dim


def _per_token_head(base: str, d: int) -> KvFormat:
    return KvFormat(
        name=f"{base}_per_token_head_d{d}",
        bytes_per_element=Fraction(d + SCALE_FP32, d),
        note=f"1-byte {base} values + one fp32 scale per token, head and K/V vector "
        f"(head_dim {d}): {d + SCALE_FP32}/{d} B/element",
        head_dim=d,
    )


KV_FORMATS: dict[str, KvFormat] = {
    f.name: f
    for f in (
        KvFormat(
            "nvfp4",
            Fraction(9, 16),
            "4-bit values + one fp8 scale per 16 = head/2 + head/16 bytes per K and V vector",
        ),
        KvFormat(
            "fp8_ds_mla",
            Fraction(656, DS_MLA_LATENT),
            "656 B per token per layer: 512 fp8 + 4 fp32 scales + 64 bf16 RoPE values",
            mla_latent=DS_MLA_LATENT,
        ),
        KvFormat(
            "nvfp4_ds_mla",
            Fraction(352, DS_MLA_LATENT),
            "352 B per token per layer (vLLM 0.33 layout)",
            mla_latent=DS_MLA_LATENT,
        ),
        *(_per_token_head(base, d) for base in ("int8", "fp8") for d in PER_TOKEN_HEAD_DIMS),
    )
}

# Engine spellings -> kvplan names (vLLM --kv-cache-dtype, SGLang --kv-cache-dtype,
# TensorRT-LLM kv_cache_config.dtype).
ENGINE_ALIASES: dict[str, str] = {
    "fp8_inc": "fp8",
    "nvfp4_kv": "nvfp4",
    "fp4_e2m1": "nvfp4",
}

PER_TOKEN_HEAD = ("int8_per_token_head", "fp8_per_token_head")


@dataclass(frozen=True)
class IndexerFormat:
    """How an engine stores DSA indexer keys: `value_bytes` per element plus
    `scale_bytes` per `quant_block` elements (whole blocks only, as the engines'
    `d // quant_block_size * 4`)."""

    name: str
    value_bytes: int
    quant_block: int
    scale_bytes: int
    note: str
    fp32_value_bytes: int | None = None  # the values' width when the KV cache is fp32

    def bytes_per_token(self, index_head_dim: int, kv_dtype: str | None = None) -> int:
        """Bytes one layer's indexer key takes per token (under a `kv_dtype` KV cache)."""
        value = self.value_bytes
        if kv_dtype == "fp32" and self.fp32_value_bytes is not None:
            value = self.fp32_value_bytes
        return index_head_dim * value + index_head_dim // self.quant_block * self.scale_bytes


INDEXER_FORMATS: dict[str, IndexerFormat] = {
    f.name: f
    for f in (
        IndexerFormat(
            "fp8_block128",
            value_bytes=1,
            quant_block=128,
            scale_bytes=SCALE_FP32,
            note="fp8 values + one fp32 scale per 128, as uint8",
        ),
        IndexerFormat(
            "bf16",
            value_bytes=2,
            quant_block=1,
            scale_bytes=0,
            note="16-bit values, no scales",
        ),
        IndexerFormat(
            "bf16_or_fp32",
            value_bytes=2,
            quant_block=1,
            scale_bytes=0,
            note="16-bit values (fp32 under an fp32 KV cache), no scales",
            fp32_value_bytes=4,
        ),
    )
}


def resolve_per_token_head(name: str, head_dim: int) -> str:
    """int8_per_token_head -> int8_per_token_head_d128 for a model with 128-wide heads."""
    key = f"{name}_d{head_dim}"
    if key not in KV_FORMATS:
        raise KeyError(key)
    return key
