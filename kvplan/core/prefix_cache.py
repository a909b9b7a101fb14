"""Prefix caching: whether the engine keeps finished prompts' KV for reuse, its default per
release and model kind, and what it costs in KV pages.

For attention layers prefix caching costs nothing at start-up: cached blocks are the free
blocks of the same pool. For the fixed-state layers of a hybrid (Mamba, Gated DeltaNet,
short conv) vLLM V1 keeps more state pages per request, by its `mamba_cache_mode`
(vllm/v1/kv_cache_interface.py `MambaSpec.max_memory_usage_bytes`, the same in 0.16.0
:293-300, 0.19.0 :293-300, 0.24.0 :648-657, 0.28.0 :687-696):

  none   1 + num_speculative_tokens pages (prefix caching off)
  align  2 + num_speculative_tokens pages (the running state and the last block-boundary
         checkpoint), the attention block size unchanged (0.24.0 platforms/interface.py
         :764-780: only `mamba_block_size = block_size`)
  all    cdiv(max_model_len, block) + num_speculative_tokens pages, with the attention block
         raised to a multiple of the Mamba2 kernel chunk (0.24.0 platforms/interface.py
         :752-762) - not modelled: kvplan refuses rather than guess the chunk

and the mode follows from --enable-prefix-caching (`MambaModelConfig.verify_and_update_config`,
model_executor/models/config.py):

  <= 0.11.0      hybrids: prefix caching forced off (0.11.0 :295-296 "Hybrid or mamba-based
                 model detected: disabling prefix caching since it is not yet supported")
  0.12.0-0.14.x  no mode yet: on -> the "all" layout (MambaSpec holds cdiv(max_model_len,
                 mamba_block_size) pages, mamba_block_size = block_size: 0.12.0
                 kv_cache_interface.py:262-264) for models declaring SupportsMambaPrefixCaching,
                 else turned off ("... without support for prefix caching: disabling",
                 0.12.0 model_executor/models/config.py:292-309; 0.14.0 :333-349)
  0.15.0-0.27.x  on -> "all" for models declaring SupportsMambaPrefixCaching (the Mamba-1 /
                 Mamba-2 families: Jamba, Bamba, Nemotron-H, Zamba2, Granite-4, Falcon-H1,
                 Mamba), else "align" (Gated DeltaNet, short conv: 0.15.0 :333-347 and
                 config/cache.py:34 `MambaCacheMode = Literal["all", "align", "none"]`; 0.16.0
                 :333-347, 0.19.0 :437-451, 0.24.0 :418-432, 0.27.0 :613-617)
  >= 0.28.0      on -> "align" for every hybrid (0.28.0 :603-604; vLLM PR #50991
                 "[Mamba] enable prefix cache by default ... change the default mode to align");
                 "all" left only behind --mamba-cache-mode all (0.31.0 config/cache.py:62), gone
                 in 0.32.0 (config/cache.py:63 `MambaCacheMode = Literal["align", "none"]`)
  >= 0.32.0      align: a Mamba-2 layer keeps one more page, its prefill checkpoint
                 (model_executor/layers/mamba/mamba_mixer2.py:1107 `num_prefill_checkpoint_
                 blocks=1, prefill_checkpoint_alignment=1`; kv_cache_interface.py:1076-1080
                 `2 + num_speculative_blocks + num_prefill_checkpoint_blocks`). 0.33.0 also
                 gives Gated DeltaNet layers that page when the FlashInfer GDN prefill kernel
                 runs, and aligns blocks to its 64-token checkpoint grid (`gdn_checkpoint`
                 below: counted from the GPU catalog's compute capability; a --gpu-file GPU
                 that does not state one leaves the page uncounted, and a note says so).

vLLM 0.33.0's Gated DeltaNet prefill checkpoint (0.33.0 wheel):
  * backend: `_resolve_gdn_prefill_backend` (model_executor/layers/mamba/gdn/
    qwen_gdn_linear_attn.py:148-266) picks FlashInfer with the default "auto" on CUDA when
    the device is compute capability 9.0 (`is_device_capability(90)`, :249-250), or 10.x /
    12.x (`is_device_capability_family(100 / 120)`) with linear_key_head_dim == 128 and a
    CUDA runtime >= 13 (`get_cuda_runtime_major`, torch.version.cuda; :251-263); else
    Triton (ROCm: AITER FlyDSL or Triton, no checkpoint).
  * the layer: in Mamba cache mode align with FlashInfer it declares a checkpoint
    alignment of 64 (:690-703, FLASHINFER_GDN_CHECKPOINT_ALIGNMENT v1/attention/backends/
    gdn_attn.py:34) and, when every Mamba-type layer of the model declares one
    (mamba/abstract.py:98-113: the base class declares none, :65-70), its MambaSpec gets
    num_prefill_checkpoint_blocks=1 (:739-752): one more state page per request
    (kv_cache_interface.py:1136-1139).
  * the block: in align mode the attention block is a multiple of lcm(kernel alignment,
    that 64) (platforms/interface.py:1089-1095), before it is raised to hold the state page.
  Assumed: the CUDA runtime is 13 (the PyPI wheel of 0.33.0 is built for it: its
  extensions link libcudart.so.13 / libnvrtc.so.13, e.g. vllm/_flashmla_extension_C.abi3.so,
  and it pins nvidia-cutlass-dsl[cu13]); a CUDA 12 build keeps Triton on Blackwell and has
  no such page there. The default gdn_prefill_backend "auto" is assumed (additional_config
  can force "triton"). The checkpoint workspace (max_num_batched_tokens / 64 states, shared
  workspace manager, :763-777) is forward-time memory, not modelled.

Defaults (what a release does when the flag is not given):
  vLLM V0 (<= 0.7): off (0.6.4.post1 engine/arg_utils.py:116 `enable_prefix_caching: bool =
                 False`); V0 refuses it with a sliding window (config.py:770-773
                 "Prefix caching is not supported with sliding window").
  vLLM V1:       on for decoder-only attention models (config/cache.py `enable_prefix_caching:
                 bool = True`; engine/arg_utils.py `_set_default_chunked_prefill_and_prefix_
                 caching_args` takes `model_config.is_prefix_caching_supported`); hybrids off
                 through 0.27.x (0.19.0 config/model.py:1785 / 0.22.0 :1859 "Hybrid models do
                 not support prefix caching since the feature is still experimental"; 0.27.0
                 engine/arg_utils.py:2604-2606 `... and not model_config.is_hybrid`), on from
                 0.28.0 (engine/arg_utils.py:2650, config/model.py:2072-2074); attention-free
                 (pure Mamba) and encoder-decoder models off in every release.
  SGLang:        the radix cache is on (server_args.py `disable_radix_cache: bool = False`:
                 0.3.0 :81, 0.4.6 :150, 0.5.8 :554; `--disable-radix-cache` turns it off); no
                 memory term for attention layers; for a hybrid, off changes how the Mamba
                 pool is sized (not modelled: refused).
  TensorRT-LLM:  KV block reuse (`kv_cache_config.enable_block_reuse`, set in the LLM API
                 YAML): reuses blocks of the same pool, no memory term; no default read
                 (None).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from kvplan.core.engines import Engine, EngineProfile, parse_version
from kvplan.core.geometry import LayerKind, Mixer, ModelSpec

if TYPE_CHECKING:
    from kvplan.core.gpu import GpuSpec

# vLLM releases (first release where each rule holds), each with its source above
VLLM_V1_FIRST = (0, 8)
VLLM_HYBRID_PREFIX_FIRST = (0, 12)  # 0.11.0 forces it off for hybrids; 0.12.0 reads the flag
VLLM_HYBRID_MODES_FIRST = (0, 15)  # 0.14.0 has no mamba_cache_mode, 0.15.0 has it
VLLM_HYBRID_DEFAULT_ON_FIRST = (0, 28)  # 0.28.0: hybrids on by default, mode "align"
VLLM_MAMBA2_CHECKPOINT_FIRST = (0, 32)  # 0.31.0 has no Mamba-2 checkpoint page, 0.32.0 has
VLLM_GDN_CHECKPOINT_FIRST = (0, 33)  # 0.32.0: none for GDN; 0.33.0: with FlashInfer GDN
GDN_CHECKPOINT_ALIGNMENT = 64  # FLASHINFER_GDN_CHECKPOINT_ALIGNMENT (0.33.0 gdn_attn.py:34)
GDN_FLASHINFER_KEY_HEAD_DIM = 128  # Blackwell: only head_k_dim 128 (qwen_gdn_linear_attn.py)

# the mixers of vLLM's SupportsMambaPrefixCaching models (0.24.0 model_executor/models/
# {mamba,mamba2,jamba,bamba,nemotron_h,zamba2,granitemoehybrid,falcon_h1}.py): "all" mode
MAMBA_PREFIX_MIXERS = frozenset({Mixer.MAMBA, Mixer.MAMBA2})


class MambaCacheMode(str, Enum):
    """vLLM's `--mamba-cache-mode` (config/cache.py `MambaCacheMode`)."""

    NONE = "none"
    ALIGN = "align"
    ALL = "all"


def _release(profile: EngineProfile, release: str | None) -> tuple[int, ...]:
    """The release a deployment runs: the one given, else its line's newest."""
    if release is None or release == profile.version:
        return profile.last
    return parse_version(release)


def _at_least(release: tuple[int, ...], first: tuple[int, ...]) -> bool:
    return release[: len(first)] + (0,) * (len(first) - len(release)) >= first


def has_state(spec: ModelSpec) -> bool:
    return any(layer.is_recurrent for layer in spec.layers)


def _has_attention(spec: ModelSpec) -> bool:
    return any(layer.kind is not LayerKind.NONE for layer in spec.layers)


def _encoder_decoder(spec: ModelSpec) -> bool:
    return any(layer.mixer_kind is Mixer.CROSS_ATTENTION for layer in spec.layers)


def default_prefix_caching(
    engine: Engine, profile: EngineProfile, release: str | None, spec: ModelSpec
) -> bool | None:
    """What the engine release does when the user says nothing (None: no engine)."""
    if engine is Engine.SGLANG:
        return True  # radix cache on unless --disable-radix-cache
    if engine is not Engine.VLLM:
        return None
    rel = _release(profile, release)
    if not _at_least(rel, VLLM_V1_FIRST):
        return False  # V0
    if _encoder_decoder(spec):
        return False
    if has_state(spec):
        if not _has_attention(spec):
            return False  # attention-free
        return _at_least(rel, VLLM_HYBRID_DEFAULT_ON_FIRST)
    return True


def mamba_cache_mode(
    profile: EngineProfile, release: str | None, spec: ModelSpec, enabled: bool
) -> MambaCacheMode:
    """The mode vLLM V1 picks for a hybrid's state layers (see the module docstring)."""
    rel = _release(profile, release)
    if (
        not enabled
        or not has_state(spec)
        or not _at_least(rel, VLLM_V1_FIRST)
        or not _at_least(rel, VLLM_HYBRID_PREFIX_FIRST)
    ):
        return MambaCacheMode.NONE
    if _at_least(rel, VLLM_HYBRID_DEFAULT_ON_FIRST):
        return MambaCacheMode.ALIGN
    if _mamba_prefix_model(spec):
        return MambaCacheMode.ALL
    if not _at_least(rel, VLLM_HYBRID_MODES_FIRST):
        return MambaCacheMode.NONE  # 0.12-0.14: turned off for the model
    return MambaCacheMode.ALIGN


def _mamba_prefix_model(spec: ModelSpec) -> bool:
    return any(layer.mixer_kind in MAMBA_PREFIX_MIXERS for layer in spec.layers)


def state_pages(
    profile: EngineProfile,
    release: str | None,
    spec: ModelSpec,
    mode: MambaCacheMode,
    speculative_tokens: int,
    gpu: GpuSpec | None = None,
) -> int:
    """State pages one request holds per state group (MambaSpec.max_memory_usage_bytes):
    1 + k off, 2 + k in align, + 1 prefill checkpoint (a Mamba-2 model from 0.32.0, a Gated
    DeltaNet model on `gpu` where vLLM 0.33 runs FlashInfer's GDN prefill: `gdn_checkpoint`);
    "all" is refused before this is asked."""
    if mode is not MambaCacheMode.ALIGN:
        return 1 + speculative_tokens
    checkpoint = _at_least(_release(profile, release), VLLM_MAMBA2_CHECKPOINT_FIRST) and any(
        layer.mixer_kind is Mixer.MAMBA2 for layer in spec.layers
    )
    gdn = gpu is not None and gdn_checkpoint(profile, release, spec, mode, gpu) is True
    return 2 + speculative_tokens + int(checkpoint or gdn)


def flashinfer_gdn_prefill(gpu: GpuSpec, spec: ModelSpec) -> bool | None:
    """Whether vLLM 0.33's `_resolve_gdn_prefill_backend` ("auto") picks FlashInfer's GDN
    prefill kernel on `gpu` for `spec` (module docstring): compute capability 9.0, or 10.x /
    12.x with key head dim 128 (CUDA 13 assumed). None when an NVIDIA GPU does not state its
    compute capability (a --gpu-file entry): kvplan cannot tell."""
    if gpu.vendor != "nvidia":
        return False  # ROCm: AITER FlyDSL or Triton
    if gpu.compute_capability is None:
        return None
    if gpu.compute_capability == "9.0":
        return True
    key_dims = {
        layer.recurrent.key_head_dim
        for layer in spec.layers
        if layer.mixer_kind is Mixer.GATED_DELTANET and layer.recurrent is not None
    }
    return gpu.cuda_major in (10, 12) and key_dims == {GDN_FLASHINFER_KEY_HEAD_DIM}


def gdn_checkpoint(
    profile: EngineProfile,
    release: str | None,
    spec: ModelSpec,
    mode: MambaCacheMode,
    gpu: GpuSpec,
) -> bool | None:
    """vLLM >= 0.33 in align mode on a Gated DeltaNet model: whether each request holds the
    GDN prefill-checkpoint page (and blocks align to 64 tokens). Only when every state layer
    is Gated DeltaNet (another state layer declares no alignment, so none exports) and the
    FlashInfer kernel runs; None when the GPU does not say (`flashinfer_gdn_prefill`)."""
    if mode is not MambaCacheMode.ALIGN:
        return False
    if not _at_least(_release(profile, release), VLLM_GDN_CHECKPOINT_FIRST):
        return False
    state = [layer.mixer_kind for layer in spec.layers if layer.is_recurrent]
    if Mixer.GATED_DELTANET not in state or set(state) != {Mixer.GATED_DELTANET}:
        return False
    return flashinfer_gdn_prefill(gpu, spec)


def uncounted_checkpoint(
    profile: EngineProfile,
    release: str | None,
    spec: ModelSpec,
    mode: MambaCacheMode,
    gpu: GpuSpec,
) -> bool:
    """vLLM 0.33 align mode on a Gated DeltaNet model on a GPU that does not state its
    compute capability: the FlashInfer GDN prefill-checkpoint page may be held, not counted."""
    return gdn_checkpoint(profile, release, spec, mode, gpu) is None


def refusal(
    engine: Engine,
    profile: EngineProfile,
    release: str | None,
    spec: ModelSpec,
    enabled: bool | None,
) -> str | None:
    """Why prefix caching as asked cannot be planned: the engine refuses it, or the engine
    does not have it, or kvplan does not model the layout it picks. None when it can."""
    if enabled is None:
        return None
    if engine is Engine.NONE:
        return "prefix caching is an engine setting, but the engine is none (plain arithmetic)"
    if engine is Engine.SGLANG and not enabled and has_state(spec):
        return (
            "SGLang with --disable-radix-cache sizes a hybrid's Mamba-state pool by "
            "max_running_requests instead of --mamba-full-memory-ratio (0.5.8 model_executor/"
            "model_runner_kv_cache_mixin.py:168-178, 275-280), which kvplan does not model"
        )
    if engine is not Engine.VLLM or not enabled:
        return None
    rel = _release(profile, release)
    if not _at_least(rel, VLLM_V1_FIRST):
        attention = [layer for layer in spec.layers if layer.kind is not LayerKind.NONE]
        if attention and all(layer.kind is LayerKind.SLIDING for layer in attention):
            return (
                "vLLM V0 refuses it: NotImplementedError: Prefix caching is not supported "
                "with sliding window. Run with --disable-sliding-window to use prefix caching."
            )
        return None
    if mamba_cache_mode(profile, release, spec, enabled) is MambaCacheMode.ALL:
        return (
            "with prefix caching vLLM 0.12-0.27 keeps this Mamba model's state in "
            "--mamba-cache-mode all (one state page per block of max_model_len, the attention "
            "block aligned to the Mamba2 kernel chunk), which kvplan does not model"
        )
    return None
