"""Read a multimodal config's vision encoder into `kvplan.core.vision.VisionEncoder`.

One entry per multimodal family (the wrapper's `model_type`), each naming the keys it reads
and the transformers module it mirrors (transformers 5.24, models/<family>/modeling_*.py);
tests/test_vision.py checks every family's total against the module tree transformers
builds from the bundled configs, a published count or a hand count (Kimi-VL's MoonViT and
LLaVA's CLIP: tests/test_catalog_vlm.py). A `vision_config` of a family not listed here is reported
as not counted (the weights are then the text decoder's only, and the output says so);
a listed family with a missing or malformed key is an error naming `vision_config.<key>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from kvplan.core.vision import Linear, VisionEncoder, VitStack, layer_norm


class VisionKeyError(Exception):
    """A key of a known vision family is missing or malformed (the reader reports it)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class _Keys:
    """Typed reads from one mapping, errors naming the full key path. A key the config
    leaves out takes the transformers config class's default (`defaults`), noted in
    `notes` as an assumption; a key with no default is required."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        prefix: str,
        defaults: Mapping[str, Any],
        owner: str,
        notes: list[str],
    ) -> None:
        self.raw = raw
        self.prefix = prefix
        self.defaults = defaults
        self.owner = owner
        self.notes = notes

    def get(self, key: str) -> Any:
        if self.raw.get(key) is not None:
            return self.raw[key]
        name = f"{self.prefix}{key}"
        if key not in self.defaults:
            raise VisionKeyError(name, f"missing required key {name}")
        value = self.defaults[key]
        note = f"{name} not in config: using the {self.owner} default {value!r}"
        if note not in self.notes:
            self.notes.append(note)
        return value

    def integer(self, key: str) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            name = f"{self.prefix}{key}"
            raise VisionKeyError(name, f"key {name} must be a positive integer, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            name = f"{self.prefix}{key}"
            raise VisionKeyError(name, f"key {name} must be true or false, got {value!r}")
        return value

    def list_len(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, list | tuple):
            name = f"{self.prefix}{key}"
            raise VisionKeyError(name, f"key {name} must be a list, got {value!r}")
        return len(value)

    def must_be(self, key: str, expected: Any) -> None:
        """A key whose other values change the module tree in ways kvplan does not model."""
        value = self.get(key)
        if value != expected:
            name = f"{self.prefix}{key}"
            raise VisionKeyError(
                name, f"key {name} = {value!r} is not supported (only {expected!r})"
            )


Reader = Callable[[_Keys, _Keys, int], VisionEncoder]


def _vit(v: _Keys, layers_key: str = "num_hidden_layers", **flags: Any) -> VitStack:
    return VitStack(
        layers=v.integer(layers_key),
        hidden=v.integer("hidden_size"),
        intermediate=v.integer("intermediate_size"),
        **flags,
    )


def _gemma3(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """SigLIP encoder (SiglipVisionModel) + Gemma3MultiModalProjector (a bias-free h_v x h
    matrix and an RMSNorm)."""
    v.must_be("vision_use_head", False)
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    patches = (v.integer("image_size") // p) ** 2
    return VisionEncoder(
        family="gemma3",
        stacks=(_vit(v),),
        embeddings=v.integer("num_channels") * p * p * h + h + patches * h,
        norms=layer_norm(h) + h,
        linears=(Linear(inputs=h, outputs=text_hidden),),
    )


def _lfm2_vl(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """SigLIP2 NaFlex encoder (linear patch embedding, `num_patches` positions) +
    Lfm2VlMultiModalProjector (pixel unshuffle by `downsample_factor`, two linears)."""
    v.must_be("vision_use_head", False)
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    f = top.integer("downsample_factor")
    wide = h * f * f
    bias = top.flag("projector_bias")
    ln = layer_norm(wide) if top.flag("projector_use_layernorm") else 0
    mid = top.integer("projector_hidden_size")
    return VisionEncoder(
        family="lfm2_vl",
        stacks=(_vit(v),),
        embeddings=v.integer("num_channels") * p * p * h + h + v.integer("num_patches") * h,
        norms=layer_norm(h) + ln,
        linears=(
            Linear(inputs=wide, outputs=mid, bias=bias),
            Linear(inputs=mid, outputs=text_hidden, bias=bias),
        ),
    )


def _qwen3_vl(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """Qwen3-VL / Qwen3.5 vision model: Conv3d patch embedding (bias), learned positions,
    blocks with fused qkv (bias), the merger (LayerNorm + two linears over 2x2-merged
    patches) and one DeepStack merger per `deepstack_visual_indexes` entry."""
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    m = v.integer("spatial_merge_size")
    wide = h * m * m
    out = v.integer("out_hidden_size")
    deep = v.list_len("deepstack_visual_indexes")
    patch = v.integer("in_channels") * v.integer("temporal_patch_size") * p * p * h + h
    merger = (
        Linear(inputs=wide, outputs=wide, bias=True),
        Linear(inputs=wide, outputs=out, bias=True),
    )
    return VisionEncoder(
        family=str(top.raw.get("model_type")),
        stacks=(_vit(v, "depth"),),
        embeddings=patch + v.integer("num_position_embeddings") * h,
        norms=layer_norm(h) + deep * layer_norm(wide),
        linears=merger * (1 + deep),
    )


def _gemma4(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """Gemma4VisionModel: a 2 x `position_embedding_size` position table, a bias-free linear
    patch projection, blocks with q/k norms, gated MLP and four RMSNorms; the embedder is one
    bias-free projection into the text width."""
    v.must_be("use_clipped_linears", False)
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    bias = v.flag("attention_bias")
    stack = _vit(
        v,
        gated_mlp=True,
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=False,
        norms=4,
        norm_bias=False,
        qk_norm_dim=v.integer("head_dim"),
    )
    return VisionEncoder(
        family="gemma4",
        stacks=(stack,),
        embeddings=2 * v.integer("position_embedding_size") * h + 3 * p * p * h,
        linears=(Linear(inputs=h, outputs=text_hidden),),
    )


def _llama4(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """Llama4VisionModel: class token, learned positions, bias-free linear patch embedding,
    pre/post LayerNorms, the pixel-shuffle adapter (two bias-free linears) and a bias-free
    projector into the text width."""
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    patches = (v.integer("image_size") // p) ** 2 + 1
    proj_in, proj_out = v.integer("projector_input_dim"), v.integer("projector_output_dim")
    return VisionEncoder(
        family="llama4",
        stacks=(_vit(v),),
        embeddings=h + patches * h + v.integer("num_channels") * p * p * h,
        norms=2 * layer_norm(h),
        linears=(
            Linear(inputs=v.integer("intermediate_size"), outputs=proj_in),
            Linear(inputs=proj_out, outputs=proj_out),
            Linear(inputs=v.integer("vision_output_dim"), outputs=text_hidden),
        ),
    )


def _mistral3(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """Pixtral encoder (bias-free conv patch embedding, RMSNorms, gated MLP, RoPE: no position
    table) + Mistral3MultiModalProjector (RMSNorm, 2x2 patch merger, two linears)."""
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    heads = v.integer("num_attention_heads")
    if heads * v.integer("head_dim") != h:
        raise VisionKeyError(
            "vision_config.head_dim", "vision_config.head_dim x num_attention_heads != hidden_size"
        )
    layer = top.get("vision_feature_layer")
    feature_layers = 1 if isinstance(layer, int) else top.list_len("vision_feature_layer")
    m = top.integer("spatial_merge_size")
    bias = top.flag("multimodal_projector_bias")
    stack = _vit(v, gated_mlp=True, qkv_bias=False, o_bias=False, mlp_bias=False, norm_bias=False)
    return VisionEncoder(
        family="mistral3",
        stacks=(stack,),
        embeddings=v.integer("num_channels") * p * p * h,
        norms=2 * h,
        linears=(
            Linear(inputs=h * m * m, outputs=h),
            Linear(inputs=h * feature_layers, outputs=text_hidden, bias=bias),
            Linear(inputs=text_hidden, outputs=text_hidden, bias=bias),
        ),
    )


def _mllama(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """MllamaVisionModel: class token, bias-free conv patch embedding, gated position and
    tile embeddings (one row per supported aspect ratio + 1), a local and a gated global
    encoder; the projector maps the concatenated intermediate features into the text width."""
    h, p = v.integer("hidden_size"), v.integer("patch_size")
    tiles = v.integer("max_num_tiles")
    ratios = v.list_len("supported_aspect_ratios") + 1
    patches = (v.integer("image_size") // p) ** 2 + 1
    flags: dict[str, Any] = {"qkv_bias": False, "o_bias": False}
    embeddings = h + v.integer("num_channels") * p * p * h
    embeddings += 1 + patches * h + ratios * tiles * patches * h  # gated position + tiles
    embeddings += 2 * (1 + ratios * tiles * h)  # pre- and post-tile embeddings
    return VisionEncoder(
        family="mllama",
        stacks=(_vit(v, **flags), _vit(v, "num_global_layers", gates=2, **flags)),
        embeddings=embeddings,
        norms=2 * layer_norm(h),
        linears=(Linear(inputs=v.integer("vision_output_dim"), outputs=text_hidden, bias=True),),
    )


def _vision_tower(v: _Keys, wrapper: str) -> tuple[VitStack, int, int]:
    """The image tower a LLaVA-style wrapper builds with AutoModel.from_config(vision_config):
    (blocks, embeddings, outer norms). CLIPVisionModel: class token, bias-free conv patch
    embedding, (image_size / patch_size)^2 + 1 learned positions, `pre_layrnorm` and
    `post_layernorm`; SiglipVisionModel: conv patch embedding with bias, (image_size /
    patch_size)^2 positions, `post_layernorm` (the attention-pooling head only when
    `vision_use_head`, which is refused: an explicit false is required, as for Gemma 3).
    Both: blocks with q/k/v/o biases, two LayerNorms and a plain fc1/fc2 MLP with biases.
    Another tower is an error naming vision_config.model_type."""
    tower = v.raw.get("model_type")
    if tower == "clip_vision_model":
        keys = _Keys(v.raw, v.prefix, _CLIP, "CLIPVisionConfig", v.notes)
        h, p = keys.integer("hidden_size"), keys.integer("patch_size")
        positions = (keys.integer("image_size") // p) ** 2 + 1
        embeddings = h + keys.integer("num_channels") * p * p * h + positions * h
        return _vit(keys), embeddings, 2 * layer_norm(h)
    if tower == "siglip_vision_model":
        keys = _Keys(v.raw, v.prefix, _SIGLIP, "SiglipVisionConfig", v.notes)
        keys.must_be("vision_use_head", False)
        h, p = keys.integer("hidden_size"), keys.integer("patch_size")
        positions = (keys.integer("image_size") // p) ** 2
        embeddings = keys.integer("num_channels") * p * p * h + h + positions * h
        return _vit(keys), embeddings, layer_norm(h)
    raise VisionKeyError(
        "vision_config.model_type",
        f"key vision_config.model_type = {tower!r} is not supported in a {wrapper} config "
        "(only 'clip_vision_model' and 'siglip_vision_model')",
    )


def _llava_projector(v: _Keys, top: _Keys, text_hidden: int) -> tuple[Linear, Linear]:
    """Llava(Next)MultiModalProjector: linear_1 over the concatenated `vision_feature_layer`
    outputs (h_v x layers -> text width), linear_2 (text width -> text width), both biased
    when `multimodal_projector_bias`."""
    h = v.integer("hidden_size")
    layer = top.get("vision_feature_layer")
    feature_layers = 1 if isinstance(layer, int) else top.list_len("vision_feature_layer")
    bias = top.flag("multimodal_projector_bias")
    return (
        Linear(inputs=h * feature_layers, outputs=text_hidden, bias=bias),
        Linear(inputs=text_hidden, outputs=text_hidden, bias=bias),
    )


def _llava(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """LlavaForConditionalGeneration (transformers models/llava): the image tower
    (_vision_tower; CLIP ViT-L/14 in LLaVA-1.5) and LlavaMultiModalProjector. Counted as the
    checkpoint stores it; vLLM's LLaVA builds only the tower layers up to
    `vision_feature_layer` and drops post_layernorm (models/llava.py
    init_vision_tower_for_llava), a difference of one block (~12.6 M of 303.5 M for CLIP
    ViT-L/14) that kvplan does not model."""
    stack, embeddings, norms = _vision_tower(v, "llava")
    return VisionEncoder(
        family="llava",
        stacks=(stack,),
        embeddings=embeddings,
        norms=norms,
        linears=_llava_projector(v, top, text_hidden),
    )


def _llava_next(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """LlavaNextForConditionalGeneration (transformers models/llava_next; Granite Vision is
    this class with a SigLIP tower and four `vision_feature_layer`s): the image tower, the
    same two-layer projector as LLaVA and `image_newline`, one learned text-width vector."""
    stack, embeddings, norms = _vision_tower(v, "llava_next")
    return VisionEncoder(
        family="llava_next",
        stacks=(stack,),
        embeddings=embeddings + text_hidden,
        norms=norms,
        linears=_llava_projector(v, top, text_hidden),
    )


def _named(keys: _Keys, *names: str) -> str:
    """The spelling a config uses for a key known by several (native transformers names
    first, then the remote-code ones); the first when none is present (its default)."""
    return next((n for n in names if keys.raw.get(n) is not None), names[0])


def _kimi_k25(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """MoonViT (Kimi_K25VisionModel): conv patch embedding (bias), a learned height x width
    position table (time embeddings are fixed), blocks with q/k/v/o biases and two
    LayerNorms, a final LayerNorm; the patch-merger projector is a LayerNorm over the vision
    width and two linears over merge_kernel_size-merged patches (Kimi_K25MultiModalProjector).
    The published config spells the vision keys as the remote code did (vt_hidden_size,
    init_pos_emb_height, mm_hidden_size); transformers' own names are read first."""
    h = v.integer(_named(v, "hidden_size", "vt_hidden_size"))
    stack = VitStack(
        layers=v.integer(_named(v, "num_hidden_layers", "vt_num_hidden_layers")),
        hidden=h,
        intermediate=v.integer(_named(v, "intermediate_size", "vt_intermediate_size")),
    )
    p = v.integer("patch_size")
    rows = v.integer(_named(v, "pos_emb_height", "init_pos_emb_height"))
    cols = v.integer(_named(v, "pos_emb_width", "init_pos_emb_width"))
    kernel = v.get("merge_kernel_size")
    proj = (
        top.integer("projection_hidden_size")
        if top.raw.get("projection_hidden_size") is not None or "mm_hidden_size" not in v.raw
        else v.integer("mm_hidden_size")
    )
    return _moonvit("kimi_k25", stack, p, rows, cols, kernel, proj, text_hidden)


def _kimi_vl(v: _Keys, top: _Keys, text_hidden: int) -> VisionEncoder:
    """Kimi-VL (remote code modeling_kimi_vl.py; vLLM models/moonvit.py + kimi_vl.py): the
    same MoonViT as Kimi-K2.5 under transformers' key names (MoonVisionPatchEmbed: conv with
    bias, a learned init_pos_emb_height x init_pos_emb_width x h table; MoonVitEncoderLayer:
    wqkv / wo with biases, norm0 / norm1 LayerNorms, fc0 / fc1 with biases; final_layernorm)
    and KimiVLMultiModalProjector: pre_norm LayerNorm over the vision width, linear_1 and
    linear_2 (biases) over merge_kernel_size-merged patches into the text width."""
    return _moonvit(
        "kimi_vl",
        _vit(v),
        v.integer("patch_size"),
        v.integer("init_pos_emb_height"),
        v.integer("init_pos_emb_width"),
        v.get("merge_kernel_size"),
        v.integer("hidden_size"),
        text_hidden,
    )


def _moonvit(
    family: str,
    stack: VitStack,
    patch: int,
    rows: int,
    cols: int,
    kernel: Any,
    proj: int,
    text_hidden: int,
) -> VisionEncoder:
    """MoonViT + patch-merger projector; `proj` is the width the projector's LayerNorm sees."""
    if not isinstance(kernel, list | tuple) or len(kernel) != 2:
        raise VisionKeyError(
            "vision_config.merge_kernel_size",
            f"key vision_config.merge_kernel_size must be two integers, got {kernel!r}",
        )
    h = stack.hidden
    wide = proj * int(kernel[0]) * int(kernel[1])
    embeddings = 3 * patch * patch * h + h + rows * cols * h
    norms = layer_norm(h) + layer_norm(proj)
    linears = (
        Linear(inputs=wide, outputs=wide, bias=True),
        Linear(inputs=wide, outputs=text_hidden, bias=True),
    )
    # vLLM (0.22.0 wheel) keeps whole on every TP rank: the Conv2d patch embedding and the
    # position table (kimi_k25_vit.py MoonVision3dPatchEmbed / Learnable2DInterpPosEmbDivided_
    # fixed, plain modules), each block's two LayerNorms and the final one (nn.LayerNorm), the
    # biases of the RowParallel wo and fc1 (layers/linear.py RowParallelLinear: full bias per
    # rank), and the projector (KimiK25MultiModalProjector: LayerNorm + two ReplicatedLinear);
    # wqkv (QKVParallelLinear) and fc0 (ColumnParallelLinear) are split with their biases
    # (read for Kimi-K2.5 only: Kimi-VL's vLLM module was not read, so it is split evenly)
    whole = embeddings + norms + sum(x.params() for x in linears)
    whole += stack.layers * (2 * layer_norm(h) + 2 * h)
    if family != "kimi_k25":
        whole = 0
    return VisionEncoder(
        family=family,
        stacks=(stack,),
        embeddings=embeddings,
        norms=norms,
        linears=linears,
        tp_whole=whole,
    )


# Defaults of transformers 5.24's config classes for the keys the readers use
# (models/<family>/configuration_*.py; printed from the classes' constructors).
_SIGLIP = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "patch_size": 16,
    "image_size": 224,
    "num_channels": 3,
    "vision_use_head": True,
}
_SIGLIP2 = {k: v for k, v in _SIGLIP.items() if k != "image_size"} | {"num_patches": 256}
_CLIP = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "patch_size": 32,
    "image_size": 224,
    "num_channels": 3,
}
_QWEN3_VL = {
    "depth": 27,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "out_hidden_size": 3584,
    "in_channels": 3,
    "temporal_patch_size": 2,
    "num_position_embeddings": 2304,
}


class Family(NamedTuple):
    reader: Reader
    vision_defaults: Mapping[str, Any]  # the vision config class's defaults
    vision_class: str
    top_defaults: Mapping[str, Any] = {}  # the multimodal config class's defaults
    top_class: str = ""


# the multimodal wrapper's model_type -> its reader and defaults
FAMILIES: dict[str, Family] = {
    "gemma3": Family(_gemma3, _SIGLIP, "SiglipVisionConfig"),
    "lfm2_vl": Family(
        _lfm2_vl,
        _SIGLIP2,
        "Siglip2VisionConfig",
        {
            "downsample_factor": 2,
            "projector_bias": True,
            "projector_use_layernorm": True,
            "projector_hidden_size": 2560,
        },
        "Lfm2VlConfig",
    ),
    **{
        name: Family(
            _qwen3_vl,
            _QWEN3_VL | ({"deepstack_visual_indexes": [8, 16, 24]} if "vl" in name else {}),
            "Qwen3VLVisionConfig" if "vl" in name else "Qwen3_5VisionConfig",
        )
        for name in ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")
    },
    "gemma4": Family(
        _gemma4,
        {
            "num_hidden_layers": 16,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "patch_size": 16,
            "position_embedding_size": 10240,
            "head_dim": 64,
            "attention_bias": False,
            "use_clipped_linears": False,
        },
        "Gemma4VisionConfig",
    ),
    "llama4": Family(
        _llama4,
        {
            "num_hidden_layers": 34,
            "hidden_size": 768,
            "intermediate_size": 5632,
            "patch_size": 14,
            "image_size": 448,
            "num_channels": 3,
            "projector_input_dim": 4096,
            "projector_output_dim": 4096,
            "vision_output_dim": 7680,
        },
        "Llama4VisionConfig",
    ),
    "mistral3": Family(
        _mistral3,
        {
            "num_hidden_layers": 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "patch_size": 16,
            "num_channels": 3,
            "num_attention_heads": 16,
            "head_dim": 64,
        },
        "PixtralVisionConfig",
        {"spatial_merge_size": 2, "multimodal_projector_bias": False, "vision_feature_layer": -1},
        "Mistral3Config",
    ),
    # LlavaConfig / LlavaNextConfig: a missing vision_config is CLIP's; the tower's own
    # defaults are chosen by its model_type (_vision_tower)
    "llava": Family(
        _llava,
        _CLIP,
        "CLIPVisionConfig",
        {"vision_feature_layer": -2, "multimodal_projector_bias": True},
        "LlavaConfig",
    ),
    "llava_next": Family(
        _llava_next,
        _CLIP,
        "CLIPVisionConfig",
        {"vision_feature_layer": -2, "multimodal_projector_bias": True},
        "LlavaNextConfig",
    ),
    "kimi_k25": Family(
        _kimi_k25,
        {
            "patch_size": 14,
            "pos_emb_height": 64,
            "pos_emb_width": 64,
            "num_hidden_layers": 27,
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "merge_kernel_size": [2, 2],
        },
        "Kimi_K25VisionConfig",
        {"projection_hidden_size": 1152},
        "Kimi_K25Config",
    ),
    # MoonViTConfig of the Kimi-VL remote code (configuration_kimi_vl.py; vLLM's copy,
    # transformers_utils/configs/moonvit.py, "Adapted from .../Kimi-VL-A3B-Instruct")
    "kimi_vl": Family(
        _kimi_vl,
        {
            "patch_size": 14,
            "init_pos_emb_height": 64,
            "init_pos_emb_width": 64,
            "num_hidden_layers": 27,
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "merge_kernel_size": [2, 2],
        },
        "MoonViTConfig",
    ),
    "mllama": Family(
        _mllama,
        {
            "num_hidden_layers": 32,
            "num_global_layers": 8,
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "patch_size": 14,
            "image_size": 448,
            "num_channels": 3,
            "max_num_tiles": 4,
            "supported_aspect_ratios": [
                [1, 1],
                [1, 2],
                [1, 3],
                [1, 4],
                [2, 1],
                [2, 2],
                [3, 1],
                [4, 1],
            ],
            "vision_output_dim": 7680,
        },
        "MllamaVisionConfig",
    ),
}


def read_vision(top: Mapping[str, Any], text_hidden: int, notes: list[str]) -> VisionEncoder | None:
    """The vision encoder a multimodal config declares, None when it declares none.
    Keys left to their defaults are appended to `notes`.

    Raises VisionKeyError for a known family with a bad key."""
    vision = top.get("vision_config")
    if vision is None:
        return None
    family = str(top.get("model_type") or "")
    if not isinstance(vision, Mapping):
        message = f"key vision_config must be a mapping, got {vision!r}"
        raise VisionKeyError("vision_config", message)
    entry = FAMILIES.get(family)
    if entry is None:
        return VisionEncoder(family=family or "unknown", counted=False)
    v = _Keys(vision, "vision_config.", entry.vision_defaults, entry.vision_class, notes)
    t = _Keys(top, "", entry.top_defaults, entry.top_class or family, notes)
    return entry.reader(v, t, text_hidden)
