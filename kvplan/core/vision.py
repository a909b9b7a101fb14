"""Vision encoders of multimodal checkpoints: parameters an engine loads beside the decoder.

A vision-language checkpoint (Gemma 3/4, Qwen3-VL / Qwen3.5, Llama 4, Mistral 3 / Pixtral,
Llama 3.2 Vision, LFM2-VL, Kimi-K2.5 / Kimi-VL, LLaVA) also holds a ViT-style image encoder
and a projector into the text model. vLLM and SGLang build and load them with the decoder,
so they take GPU memory the KV cache cannot use (0.3-0.9 B parameters: ~0.6-1.7 GiB in bf16,
several percent of a KV budget). They write no per-token KV cache of the decoder's kind, so
they change weights only; text-decoder parameter counts (`params`) leave them out, as
transformers' text model and most published "N B" figures of the text backbone do.

An encoder is stacks of identical transformer blocks plus embeddings, outer norms and the
projector's linear layers. One block of width h and MLP width i has
  attention   4 h^2 (+ 3 h for q/k/v biases, + h for the output bias) + 2 x head_dim (q/k norms)
  MLP         2 h i (plain) or 3 h i (gated) (+ i + h biases on the plain form)
  norms       n x h (RMSNorm) or n x 2 h (LayerNorm)
  gates       learned scalars per block (Llama 3.2 Vision's global layers)
The readers (kvplan/sources/vision.py, one entry per family) turn each family's
`vision_config` into these numbers; every family's total is checked against the module tree
transformers 5.24 builds, a published whole-model count or a hand count from the module shapes
(tests/test_vision.py, tests/test_catalog_vlm.py).
"""

from __future__ import annotations

from kvplan.core.frozen import Frozen, field


class VitStack(Frozen):
    """`layers` identical encoder blocks."""

    layers: int = field(ge=0)
    hidden: int = field(gt=0)
    intermediate: int = field(gt=0)
    gated_mlp: bool = False
    qkv_bias: bool = True
    o_bias: bool = True
    mlp_bias: bool = True
    norms: int = field(default=2, ge=0)  # per block
    norm_bias: bool = True  # LayerNorm (weight + bias) vs RMSNorm (weight only)
    qk_norm_dim: int = field(default=0, ge=0)  # per-head q and k norms (Gemma 4)
    gates: int = field(default=0, ge=0)  # learned scalars per block

    def block_params(self) -> int:
        h, i = self.hidden, self.intermediate
        attention = 4 * h * h + (3 * h if self.qkv_bias else 0) + (h if self.o_bias else 0)
        attention += 2 * self.qk_norm_dim
        mlp = (3 if self.gated_mlp else 2) * h * i + ((i + h) if self.mlp_bias else 0)
        norms = self.norms * h * (2 if self.norm_bias else 1)
        return attention + mlp + norms + self.gates

    def params(self) -> int:
        return self.layers * self.block_params()


class Linear(Frozen):
    inputs: int = field(gt=0)
    outputs: int = field(gt=0)
    bias: bool = False

    def params(self) -> int:
        return self.inputs * self.outputs + (self.outputs if self.bias else 0)


class VisionEncoder(Frozen):
    """A multimodal checkpoint's image encoder and projector (parameter counts only)."""

    family: str  # the multimodal wrapper's model_type (gemma3, qwen3_vl, llama4, ...)
    stacks: tuple[VitStack, ...] = ()
    embeddings: int = field(default=0, ge=0)  # patch embedding, positions, class/tile tokens
    norms: int = field(default=0, ge=0)  # norms outside the blocks (pre/post, projector)
    linears: tuple[Linear, ...] = ()  # adapters, mergers and the projector
    counted: bool = True  # False: a vision_config kvplan has no reader for (not counted)
    # Parameters vLLM keeps whole on every TP rank (embeddings, LayerNorms, RowParallel
    # biases, a ReplicatedLinear projector), per the family's vLLM model file; the rest of
    # the encoder is split over TP. 0 where the family's layout has not been read.
    tp_whole: int = field(default=0, ge=0)

    @property
    def encoder_params(self) -> int:
        return sum(s.params() for s in self.stacks) + self.embeddings

    @property
    def params(self) -> int:
        if not self.counted:
            return 0
        return self.encoder_params + self.norms + sum(x.params() for x in self.linears)


def layer_norm(width: int) -> int:
    """LayerNorm weight + bias."""
    return 2 * width
