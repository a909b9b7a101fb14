"""The one declaration of a deployment: every setting is one field of `Deployment`.

A setting (a knob of the GPU, the parallelism, the engine, the cache) is declared here once:
its type, default, bounds and help text live in the field's `Setting` metadata. Everything
else is derived from this class:
  - the command-line options of `fit`, `pick-g` and `roofline` (`--` + name with dashes),
  - the keys of a `kvplan check` policy file and their JSON Schema (the name itself),
  - the parsing and validation of what a user typed (kvplan.sources.deployment),
so a policy key means exactly what the flag means, and a new knob is one field here.

The class itself holds *parsed* values (a `GpuSpec`, an `Engine`, canonical dtype names,
sizes in bytes); it is a plain frozen dataclass, cheap to declare at import time, because
every command builds its options from it.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields, replace
from enum import Enum
from typing import Any

from kvplan.core.engines import (
    ENGINE_LABELS,
    ENGINES,
    Engine,
    EngineProfile,
    EngineRules,
    FractionContext,
    Platform,
    SchedulerDefaults,
    profile_for,
)
from kvplan.core.frozen import dataclass
from kvplan.core.geometry import LayerKind, Mixer, ModelSpec
from kvplan.core.gpu import GpuSpec
from kvplan.core.prefix_cache import (
    MambaCacheMode,
    default_prefix_caching,
    mamba_cache_mode,
    state_pages,
)

MAX_CTX = 1 << 40  # beyond any real context: catches typos like 10**20
MAX_BATCH = 1 << 40
MAX_PARALLEL = 4096
MAX_BLOCK_SIZE = 1 << 20
MAX_SIZE = 1 << 50  # 1 PiB per GPU: far beyond any device (the largest today hold 288 GB)
# max_model_len = -1 ("auto"): vLLM's auto-fit, the largest length one request's KV fits in
# the pool, capped by the model's max positions (vllm/v1/core/kv_cache_utils.py
# `_auto_fit_max_model_len`: "When max_model_len is set to -1, this function estimates the
# largest context length that can be supported with the available GPU memory").
AUTO_MAX_MODEL_LEN = -1


class Kind(str, Enum):
    """How a setting is written by a user, which decides how it is parsed."""

    INT = "int"  # a positive integer within [lo, hi]
    MAX_MODEL_LEN = "max_model_len"  # a positive integer within [lo, hi], or auto / -1
    FRACTION = "fraction"  # a number in (0, 1]
    SIZE = "size"  # bytes, written with a unit: 40GiB, 512MiB, 80GB
    ENGINE = "engine"  # vllm | sglang | trtllm | none
    ENGINE_VERSION = "engine_version"  # a release (0.19.0) or a modelled line (0.20)
    ENTRY_POINT = "entry_point"  # serve | llm
    KV_DTYPE = "kv_dtype"  # auto | fp16 | bf16 | fp8 | ...
    WEIGHT_DTYPE = "weight_dtype"  # auto | fp16 | ... | int4 | mxfp4
    GPU = "gpu"  # a name in the GPU catalog
    MODEL = "model"  # a model as MODEL is named: catalog name, config.json path, Hub repo id
    COUNT = "count"  # a parameter-style count: 13B, 13e9, 13000000000 (pick-g's --params)
    FLAG = "flag"  # a switch: true when given (pick-g's --tie-embeddings)
    SWITCH = "switch"  # on / off / not given (the release's default): --x / --no-x


@dataclass(frozen=True)
class Setting:
    """What the user-facing side needs to know about one deployment field."""

    kind: Kind
    help: str
    lo: int = 1
    hi: int | None = None
    engine: Engine | None = None  # the only engine this knob belongs to
    required: bool = False
    default_text: str | None = None  # the default as --help states it, when not the value


@dataclass(frozen=True)
class DraftModel:
    """A separate speculative-decoding draft model (an EAGLE / EAGLE-3 head or a small LM:
    vLLM `--speculative-config '{"model": ...}'`, SGLang `--speculative-draft-model-path`),
    read like the main model. `exact_weight_bytes`: its checkpoint's bytes when known (Hub
    safetensors headers; an EAGLE head that reuses the target's embedding or LM head does
    not ship them), else None (estimated from its config)."""

    name: str
    spec: ModelSpec
    exact_weight_bytes: int | None = None


def _setting(default: Any, kind: Kind, help: str, **info: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(kind=kind, help=help, **info)})


@dataclass(frozen=True)
class Deployment:
    """A model on a deployment: everything that decides the budget and per-GPU layout."""

    spec: ModelSpec
    gpu: GpuSpec = field(
        metadata={
            "setting": Setting(
                kind=Kind.GPU,
                required=True,
                help="GPU name, e.g. h100-sxm, a100-80gb, l40s, rtx-4090, mi300x "
                "(see `kvplan gpus`).",
            )
        }
    )
    tp: int = _setting(
        1, Kind.INT, "Tensor-parallel GPUs (weights and KV heads split).", hi=MAX_PARALLEL
    )
    pp: int = _setting(1, Kind.INT, "Pipeline-parallel stages (layers split).", hi=MAX_PARALLEL)
    engine: Engine = _setting(
        Engine.VLLM,
        Kind.ENGINE,
        "Serving engine whose memory rules apply: vllm, sglang, trtllm, none.",
    )
    engine_version: str | None = _setting(
        None,
        Kind.ENGINE_VERSION,
        "Engine release whose memory terms apply, e.g. 0.19.0 or a modelled line "
        "(vLLM 0.6, 0.16, 0.19, 0.20, 0.33; SGLang 0.3, 0.4, 0.4.6, 0.4.8, 0.5; TensorRT-LLM "
        "pytorch, trt).",
        default_text="vLLM 0.19 (newest fully validated line); others their newest",
    )
    entry_point: str = _setting(
        "serve",
        Kind.ENTRY_POINT,
        "How the engine is started: serve (API server) or llm (offline LLM class); vLLM's "
        "scheduler defaults differ.",
    )
    gpu_memory_utilization: float | None = _setting(
        None,
        Kind.FRACTION,
        "vLLM: fraction of total memory for weights + activations + KV.",
        engine=Engine.VLLM,
        default_text="the release's: 0.90, 0.92 from 0.20",
    )
    mem_fraction_static: float | None = _setting(
        None,
        Kind.FRACTION,
        "SGLang: fraction of total memory for weights + KV.",
        engine=Engine.SGLANG,
        default_text="the release's: by TP to 0.4.5 (0.88 ... 0.79), by GPU memory from 0.4.6 "
        "(0.5 on an H100: 0.835)",
    )
    mamba_full_memory_ratio: float | None = _setting(
        None,
        Kind.FRACTION,
        "SGLang hybrids: Mamba-state pool : full-attention KV pool memory ratio.",
        engine=Engine.SGLANG,
        default_text="0.9",
    )
    swa_full_tokens_ratio: float | None = _setting(
        None,
        Kind.FRACTION,
        "SGLang hybrid sliding-window pools: SWA-layer tokens / full-layer tokens "
        "(kvplan.core.sglang_swa).",
        engine=Engine.SGLANG,
        default_text="0.8",
    )
    disable_hybrid_swa_memory: bool = _setting(
        False,
        Kind.FLAG,
        "SGLang: one token pool for every layer (no separate sliding-window pool), as "
        "before 0.4.9.post3 and for the models a release does not split.",
        engine=Engine.SGLANG,
        default_text="off (the release's rule per model family)",
    )
    free_gpu_memory_fraction: float | None = _setting(
        None,
        Kind.FRACTION,
        "TensorRT-LLM: fraction of the memory free after weights.",
        engine=Engine.TRTLLM,
        default_text="0.90",
    )
    vswa: bool = _setting(
        False,
        Kind.FLAG,
        "TensorRT-LLM: cache each layer over its own attention window "
        "(kv_cache_config.max_attention_window = the model's per-layer windows): one pool per "
        "window size (VSWA). Without it every layer caches max_seq_len tokens.",
        engine=Engine.TRTLLM,
        default_text="off (TensorRT-LLM's default: max_attention_window = max_seq_len)",
    )
    kv_memory: int | None = _setting(
        None,
        Kind.SIZE,
        "KV budget per GPU, e.g. 40GiB (replaces the engine's budget; at most the GPU's memory).",
        hi=MAX_SIZE,
    )
    activation_reserve: int | None = _setting(
        None,
        Kind.SIZE,
        "Peak activation memory per GPU, e.g. 2GiB.",
        default_text="estimated like vLLM's profiling run",
        lo=0,
        hi=MAX_SIZE,
    )
    overhead: int | None = _setting(
        None,
        Kind.SIZE,
        "Non-torch runtime memory per GPU, e.g. 0.5GiB.",
        default_text="the release's: vLLM 0.19 0.25 GiB, 2.09 GiB with TP",
        lo=0,
        hi=MAX_SIZE,
    )
    # None until __post_init__ puts the engine release's default there (EngineProfile.block_size)
    block_size: int = _setting(
        None,
        Kind.INT,
        "Paged-KV block size in tokens.",
        hi=MAX_BLOCK_SIZE,
        default_text="the release's: vLLM 16, SGLang 1, TensorRT-LLM 32 (PyTorch flow) / 64 "
        "(engine flow)",
    )
    kv_dtype: str = _setting(
        "bf16",
        Kind.KV_DTYPE,
        "KV-cache dtype: auto, fp16, bf16, fp8 (fp8_e4m3, fp8_e5m2), int8, int4, nvfp4, "
        "int8_per_token_head, fp8_per_token_head, fp8_ds_mla, nvfp4_ds_mla.",
        default_text="auto: the model's 16-bit dtype",
    )
    weight_dtype: str | None = _setting(
        None,
        Kind.WEIGHT_DTYPE,
        "Weights dtype: fp16, bf16, fp8, int8, int4, mxfp4.",
        default_text="the checkpoint's",
    )
    max_num_batched_tokens: int | None = _setting(
        None,
        Kind.INT,
        "Engine's tokens per forward pass (sizes the activation estimate).",
        hi=MAX_CTX,
        default_text="the release's, by GPU: vLLM 8192 (>= 70 GiB), 2048",
    )
    max_num_seqs: int | None = _setting(
        None,
        Kind.INT,
        "Engine's maximum sequences per step (sizes the sampler estimate).",
        hi=MAX_BATCH,
        default_text="the release's, by GPU: vLLM 1024 (>= 70 GiB), 256",
    )
    max_model_len: int | None = _setting(
        None,
        Kind.MAX_MODEL_LEN,
        "Engine's maximum tokens per request (vLLM --max-model-len): the length its "
        "'maximum concurrency' figure is quoted at. 'auto' (or -1, vLLM 0.17+): the largest "
        "length that fits the KV pool, capped by the model's max positions.",
        hi=MAX_CTX,
        default_text="the model's max positions",
    )
    draft_layers: int = _setting(
        0,
        Kind.INT,
        "Speculative decoding: draft / MTP attention layers whose KV shares the pool "
        "(e.g. 1 for DeepSeek/Qwen MTP).",
        lo=0,
        hi=MAX_PARALLEL,
    )
    draft_model: DraftModel | None = _setting(
        None,
        Kind.MODEL,
        "Speculative decoding: a separate draft model (EAGLE / EAGLE-3 head or a small LM, "
        "vLLM --speculative-config model), named like MODEL; its weights and its attention "
        "layers' KV share the pool.",
        default_text="none",
    )
    num_speculative_tokens: int = _setting(
        0,
        Kind.INT,
        "Speculative tokens proposed per step: lookahead slots each sequence holds "
        "(hybrid models keep 1 + this many state pages per request).",
        lo=0,
        hi=MAX_PARALLEL,
    )
    enable_prefix_caching: bool | None = _setting(
        None,
        Kind.SWITCH,
        "Prefix caching (vLLM --enable-prefix-caching / --no-enable-prefix-caching; SGLang's "
        "radix cache, off with --disable-radix-cache). vLLM hybrids (Mamba / linear-attention "
        "state) keep 2 state pages per request with it on (Mamba cache mode align).",
        default_text="the release's: vLLM V1 on (hybrids on from 0.28.0), V0 off; SGLang on",
    )
    # Not a user setting: exact checkpoint bytes when known (Hub safetensors headers) or a
    # design's weights; None = estimate from the parameter count at `weight_dtype`.
    weights_override: int | None = None
    # Not a user setting: `weights_override` is the engine's own loaded-memory figure
    # (vLLM "Model loading took", SGLang "mem usage"), which already holds what the engine
    # builds at load beside the checkpoint (the rotary cos/sin tables), so nothing is added.
    weights_loaded: bool = False

    def __post_init__(self) -> None:
        """The engine decides how indexer keys are stored (its rule's
        `indexer_format_for`), so the model the cache math sees carries that format. A block
        size the user did not set is the engine release's default page (vLLM 16 tokens,
        SGLang 1, TensorRT-LLM 32 through the LLM API / trtllm-serve and 64 for
        trtllm-build engines: EngineProfile.block_size, with its source there). A float32
        checkpoint with no --weight-dtype is served in the engine's 16-bit dtype where its
        rule says so (EngineRules.loads_fp32_as: vLLM and SGLang load it in float16)."""
        if self.block_size is None:
            object.__setattr__(self, "block_size", self.profile.block_size)
        if (
            self.weight_dtype is None
            and self.spec.checkpoint_dtype == "fp32"
            and self.spec.quantization is None
            and self.rules.loads_fp32_as is not None
        ):
            # the engine serves a float32 checkpoint in 16 bits by default (its rule)
            object.__setattr__(self, "weight_dtype", self.rules.loads_fp32_as)
        fmt = self.rules.indexer_format_for(self.spec.indexer_kind)
        if self.spec.indexer_format != fmt and self.spec.has_indexer:
            object.__setattr__(self, "spec", self.spec.model_copy(update={"indexer_format": fmt}))

    # ---- what the engine table adds -----------------------------------------------------
    @property
    def rules(self) -> EngineRules:
        return ENGINES[self.engine]

    @property
    def profile(self) -> EngineProfile:
        """The engine release line whose version-dependent terms apply."""
        return profile_for(self.engine, self.engine_version)

    @property
    def engine_label(self) -> str:
        """How output names the engine: the line ("vLLM 0.19"), or the release asked for
        with its line when that is not the line's own name ("vLLM 0.21.0 [0.33 line]"), so a
        user who gave 0.21.0 is not told what "vLLM 0.33" would log."""
        line = self.profile
        release = self.engine_version
        if release is None or release == line.version:
            return line.name
        return f"{ENGINE_LABELS[self.engine]} {release} [{line.version} line]"

    @property
    def platform(self) -> Platform:
        return Platform.ROCM if self.gpu.vendor == "amd" else Platform.CUDA

    @property
    def fraction(self) -> float | None:
        """The engine's memory fraction: the user's knob, else the release's default."""
        knob = self.rules.knob
        given: float | None = getattr(self, knob) if knob else None
        if given is not None:
            return given
        default = self.profile.default_fraction
        if default is None:
            return None
        return default(
            FractionContext(
                tp=self.tp,
                pp=self.pp,
                smi_mib=self.gpu.memory_bytes / 2**20,
                chunked_prefill=self.max_num_batched_tokens,
                speculative=bool(
                    self.draft_layers or self.draft_model or self.num_speculative_tokens
                ),
            )
        )

    @property
    def prefix_caching(self) -> bool | None:
        """Prefix caching as the engine runs it: the user's switch, else the release's
        default for this kind of model (kvplan.core.prefix_cache); None: no engine."""
        if self.enable_prefix_caching is not None:
            return self.enable_prefix_caching
        return self.default_prefix_caching

    @property
    def default_prefix_caching(self) -> bool | None:
        """What the engine release does with prefix caching for this model when not told."""
        return default_prefix_caching(self.engine, self.profile, self.engine_version, self.spec)

    @property
    def mamba_cache_mode(self) -> MambaCacheMode | None:
        """vLLM V1's Mamba cache mode for a hybrid's state layers (None: not vLLM)."""
        if self.engine is not Engine.VLLM:
            return None
        return mamba_cache_mode(
            self.profile, self.engine_version, self.spec, bool(self.prefix_caching)
        )

    @property
    def state_pages(self) -> int:
        """State pages one request holds per state group of a vLLM hybrid: 1 +
        num_speculative_tokens, 2 + it with prefix caching (align; + a Mamba-2 checkpoint
        page from 0.32.0, a Gated DeltaNet one from 0.33.0 where FlashInfer's GDN prefill
        runs on this GPU)."""
        mode = self.mamba_cache_mode or MambaCacheMode.NONE
        return state_pages(
            self.profile,
            self.engine_version,
            self.spec,
            mode,
            self.num_speculative_tokens,
            self.gpu,
        )

    @property
    def scheduler_defaults(self) -> SchedulerDefaults:
        """What the release picks on this GPU when the user sets neither limit."""
        name = f"{self.gpu.name} {self.gpu.display_name}".lower()
        scheduler = self.profile.scheduler_for(self.engine_version)
        return scheduler(self.gpu.usable_memory_bytes, name, self.entry_point)

    @property
    def scheduler_seqs(self) -> int:
        return self.max_num_seqs or self.scheduler_defaults.max_num_seqs

    @property
    def auto_max_model_len(self) -> bool:
        """--max-model-len auto (-1): the engine picks the largest length that fits."""
        return self.max_model_len == AUTO_MAX_MODEL_LEN

    @property
    def fixed_max_model_len(self) -> int | None:
        """The max_model_len the user fixed (None: the default, or auto)."""
        return None if self.auto_max_model_len else self.max_model_len

    @property
    def scheduler_tokens(self) -> int:
        """Tokens of the profiling forward pass: the user's limit, else the release's
        default; V0 without chunked prefill profiles max(max_model_len, 2048) tokens."""
        if self.max_num_batched_tokens:
            return self.max_num_batched_tokens
        defaults = self.scheduler_defaults
        tokens = defaults.max_num_batched_tokens
        if tokens is None:
            length = self.fixed_max_model_len or self.spec.max_position_embeddings or 2048
            chunked = defaults.long_context_chunked_tokens
            if chunked is not None and length > 32768 and self._v0_auto_chunked_prefill:
                return chunked
            return max(length, 2048)
        return tokens

    @property
    def _v0_auto_chunked_prefill(self) -> bool:
        """Whether vLLM V0 turns chunked prefill on by itself for a long max_model_len: on
        CUDA, for a model with no sliding window that is not multimodal (see
        engines._vllm_v0_scheduler for the source lines)."""
        spec = self.spec
        sliding = any(
            layer.kind is LayerKind.SLIDING or layer.local_window is not None
            for layer in spec.layers
        )
        multimodal = spec.vision is not None or any(
            layer.mixer is Mixer.CROSS_ATTENTION for layer in spec.layers
        )
        return self.platform is Platform.CUDA and not sliding and not multimodal

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    def with_(self, **changes: Any) -> Deployment:
        """A copy with some fields changed (values already parsed)."""
        return replace(self, **changes)


def settings() -> dict[str, Setting]:
    """Every user setting of a deployment, in declaration order: name -> Setting."""
    return {f.name: f.metadata["setting"] for f in fields(Deployment) if "setting" in f.metadata}


def setting_defaults() -> dict[str, Any]:
    """name -> default value as a user would write it (None where it is derived)."""
    out: dict[str, Any] = {}
    for f in fields(Deployment):
        if "setting" in f.metadata:
            default = None if f.default is MISSING else f.default
            out[f.name] = default.value if isinstance(default, Enum) else default
    return out


def flag_name(setting: str) -> str:
    """How the command line spells a setting: tp -> --tp, kv_dtype -> --kv-dtype."""
    return "--" + setting.replace("_", "-")
