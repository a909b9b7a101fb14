"""The one declaration of a design from flags: every knob of `pick-g`'s model design is one
field of `DesignChoices`.

A knob (a geometry figure, the vocabulary, the FFN width, MoE, a sliding/global pattern, an
MLA latent, the parameter count) is declared here once: its type, default, bounds, help
text, how it is written (`Kind`) and its `Role` live in the field's `Knob` metadata.
Everything else is derived from this class, as it is from `Deployment` for deployment
settings:
  - the command-line options of `pick-g` (`--` + name with dashes; cli/common.py
    `with_design_flags`),
  - the keyword arguments of `kvplan.pick_g` (the field names; `design=` takes the object),
  - the parsing and validation of what a user typed (`kvplan.sources.deployment
    .parse_design`, the only validator, which names the knob in every error),
  - which knobs describe a design (refused with a MODEL) and which a design needs, and the
    "given (--vocab)" rules of the assumptions block (kvplan.core.design).
So a new knob is one field here (+ whatever core logic uses it).

The class holds *parsed* values (None = not given; `params` as a count); it is a plain
frozen dataclass, cheap to declare at import time, because pick-g builds its options from it.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from enum import Enum
from typing import Any

from kvplan.core.deployment import Kind, Setting
from kvplan.core.frozen import dataclass

# Upper bounds: the geometry knobs take the plausible ranges of the config keys they stand
# for (kvplan.sources.validate HIDDEN, HEADS, HEAD_DIM; tests/test_design_choices.py keeps
# them equal: the screening layer runs before any command and imports no core module).
MAX_DESIGN_LAYERS = 1024  # designs keep 1,024 (config layers: 2,048): the largest answer in ~1 s
MAX_DESIGN_HEADS = 4096
MAX_DESIGN_HEAD_DIM = 65536
MAX_DESIGN_HIDDEN = 1 << 18
MAX_DESIGN_COUNT = 1 << 24  # vocabulary, FFN widths, experts, window, pattern, latent rank
MAX_PARAMS = 10**15  # a quadrillion parameters: 500x the largest published model


class Role(str, Enum):
    """What a knob does to the question pick-g answers."""

    GEOMETRY = "geometry"  # designing from scratch needs every one (with no MODEL)
    DESIGN = "design"  # shapes a design from flags: refused with a MODEL (its config sets it)
    EITHER = "either"  # applies to a MODEL and to a design alike


@dataclass(frozen=True)
class Knob(Setting):
    """A deployment `Setting` (kind, help, bounds) plus the knob's role in a design."""

    role: Role = Role.DESIGN


def _knob(default: Any, kind: Kind, help: str, **info: Any) -> Any:
    return field(default=default, metadata={"setting": Knob(kind=kind, help=help, **info)})


@dataclass(frozen=True)
class DesignChoices:
    """What the user chose for a design (None: not given, a rule fills it in)."""

    layers: int | None = _knob(
        None,
        Kind.INT,
        "Design from scratch: decoder layers.",
        role=Role.GEOMETRY,
        hi=MAX_DESIGN_LAYERS,
    )
    heads: int | None = _knob(
        None, Kind.INT, "Design: query heads H.", role=Role.GEOMETRY, hi=MAX_DESIGN_HEADS
    )
    head_dim: int | None = _knob(
        None, Kind.INT, "Design: head dimension.", role=Role.GEOMETRY, hi=MAX_DESIGN_HEAD_DIM
    )
    hidden: int | None = _knob(
        None, Kind.INT, "Design: hidden size [default H x head_dim].", hi=MAX_DESIGN_HIDDEN
    )
    vocab: int | None = _knob(
        None, Kind.INT, "Design: vocabulary size [default 32000].", hi=MAX_DESIGN_COUNT
    )
    intermediate: int | None = _knob(
        None,
        Kind.INT,
        "Design: FFN width [default: Llama rule, 8/3 x hidden rounded up to 256].",
        hi=MAX_DESIGN_COUNT,
    )
    tie_embeddings: bool = _knob(
        False, Kind.FLAG, "Design: the LM head shares the input embedding."
    )
    experts: int | None = _knob(None, Kind.INT, "Design: MoE routed experts.", hi=MAX_DESIGN_COUNT)
    experts_per_token: int | None = _knob(
        None, Kind.INT, "Design: MoE experts each token uses (top-k).", hi=MAX_DESIGN_COUNT
    )
    expert_intermediate: int | None = _knob(
        None,
        Kind.INT,
        "Design: FFN width of one expert [default: the FFN width].",
        hi=MAX_DESIGN_COUNT,
    )
    window: int | None = _knob(
        None,
        Kind.INT,
        "Design: sliding-window size in tokens (sliding layers).",
        hi=MAX_DESIGN_COUNT,
    )
    global_every: int | None = _knob(
        None,
        Kind.INT,
        "Design: every Nth layer is global, the rest sliding (Gemma 3: 6) [default: all sliding].",
        hi=MAX_DESIGN_COUNT,
    )
    mla_rank: int | None = _knob(
        None,
        Kind.INT,
        "Design: MLA latent rank (kv_lora_rank; DeepSeek-V2: 512).",
        hi=MAX_DESIGN_COUNT,
    )
    params: int | None = _knob(
        None,
        Kind.COUNT,
        "Parameter count at G=H, e.g. 13B or 13e9 (else counted from the geometry).",
        role=Role.EITHER,
        hi=MAX_PARAMS,
    )

    def given(self, role: Role | None = None) -> list[str]:
        """The knobs set to something other than their default (of one role), in
        declaration order."""
        defaults = knob_defaults()
        return [
            name
            for name, k in knobs().items()
            if (role is None or k.role is role) and getattr(self, name) != defaults[name]
        ]

    @property
    def designing(self) -> bool:
        """A design from flags: any geometry knob given."""
        return bool(self.given(Role.GEOMETRY))


def knobs() -> dict[str, Knob]:
    """Every knob of a design, in declaration order: name -> Knob."""
    return {f.name: f.metadata["setting"] for f in fields(DesignChoices)}


def knob_defaults() -> dict[str, Any]:
    """name -> default value (None: a rule fills it in)."""
    return {f.name: None if f.default is MISSING else f.default for f in fields(DesignChoices)}
