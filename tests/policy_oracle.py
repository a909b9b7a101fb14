"""The pydantic models `kvplan check` validated policies with until issue 14 (test oracle).

kvplan.sources.policy now validates with the light strict validator of
kvplan.sources.strict, driven by the same declaration; tests/test_policy_strict.py checks
that both give the same errors (type, location, input, bounds) and the same values, and
that the JSON Schema pydantic generates from these models is the shipped one. Kept here,
in the tests, as the reference those checks compare against; kvplan does not import it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from kvplan.core.deployment import MAX_BATCH, MAX_CTX, Kind, Setting, setting_defaults, settings
from kvplan.core.engines import Engine
from kvplan.sources.policy import HEADROOM_PATTERN, NAME_PATTERN, SIZE_PATTERN

SizeText = Annotated[str, Field(pattern=SIZE_PATTERN, examples=["4GiB", "512MiB"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KvHeadsPolicy(_Strict):
    """Constraints on the model's KV heads G (MLA counts as G = 1: one shared latent)."""

    min: int | None = Field(None, gt=0, le=1 << 20, description="G must be at least this.")
    max: int | None = Field(None, gt=0, le=1 << 20, description="G must be at most this.")
    layout: list[Literal["mha", "gqa", "mqa", "mla", "hybrid"]] | None = Field(
        None, min_length=1, description="Allowed attention layouts."
    )


class RequirementsPolicy(_Strict):
    """What must hold at the target's operating point (ctx, batch)."""

    min_headroom: Annotated[str, Field(pattern=HEADROOM_PATTERN)] | None = Field(
        None,
        description="KV budget left after batch x ctx: a size (4GiB) or a percent of the "
        "KV budget (10%). Needs ctx and batch.",
        examples=["4GiB", "10%"],
    )
    min_batch: int | None = Field(
        None,
        gt=0,
        le=MAX_BATCH,
        description="The largest batch at ctx must be at least this. Needs ctx.",
    )
    min_ctx: int | None = Field(
        None,
        gt=0,
        le=MAX_CTX,
        description="The largest context at batch must be at least this. Needs batch.",
    )
    max_decode_ms: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Decode step (ms) at batch x ctx must be at most this.",
    )
    min_tokens_per_s: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=("Aggregate decode tokens/s over the batch must be at least this."),
    )
    min_tokens_per_s_per_seq: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Decode tokens/s of each sequence must be at least this.",
    )
    kv_heads: KvHeadsPolicy | None = None


def _deployment_field(setting: Setting, default: Any) -> tuple[Any, Any]:
    """(annotation, Field) of one deployment key, from its declaration in core.deployment."""
    described = f"{setting.help} [default: {setting.default_text or default}]"
    if setting.kind is Kind.INT:
        return int | None, Field(None, gt=setting.lo - 1, le=setting.hi, description=described)
    if setting.kind is Kind.MAX_MODEL_LEN:
        length = Annotated[int, Field(gt=setting.lo - 1, le=setting.hi)]
        return length | Literal["auto", -1] | None, Field(None, description=described)
    if setting.kind is Kind.FRACTION:
        return float | None, Field(None, gt=0, le=1, allow_inf_nan=False, description=described)
    if setting.kind is Kind.SIZE:
        return SizeText | None, Field(None, description=described)
    if setting.kind is Kind.ENGINE:
        engines = Literal[tuple(e.value for e in Engine)]  # type: ignore[valid-type]
        return engines | None, Field(None, description=described)
    if setting.kind is Kind.ENTRY_POINT:
        return Literal["serve", "llm"] | None, Field(None, description=described)
    if setting.kind in (Kind.SWITCH, Kind.FLAG):  # true / false, as the light parser
        return bool | None, Field(None, description=described)
    return str | None, Field(None, min_length=1, description=setting.help)


# The deployment keys: one per field of core.deployment.Deployment, generated so a policy
# key means exactly what the flag means (same name, bounds and help).
_DEPLOYMENT_FIELDS: dict[str, Any] = {
    name: _deployment_field(setting, default)
    for (name, setting), default in zip(
        settings().items(), setting_defaults().values(), strict=True
    )
}
_DeploymentKeys: type[_Strict] = create_model(
    "_DeploymentKeys", __base__=_Strict, **_DEPLOYMENT_FIELDS
)


class _Settings(_DeploymentKeys):
    """Deployment settings (the `kvplan fit` flags, spelled with underscores), the model
    and the operating point."""

    model: str | None = Field(
        None,
        min_length=1,
        description="Catalog name, Hugging Face repo "
        "id, path to config.json/params.json, or a glob of config "
        "files (relative to this file).",
    )
    revision: str | None = Field(None, min_length=1, description="Hub revision.")
    ctx: int | None = Field(None, gt=0, le=MAX_CTX, description="Tokens per sequence.")
    batch: int | None = Field(None, gt=0, le=MAX_BATCH, description="Concurrent sequences.")
    requirements: RequirementsPolicy | None = None

    def deployment_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in settings()}


class DefaultsPolicy(_Settings):
    """Settings every target starts from (a target's own keys win; requirements merge)."""


class TargetPolicy(_Settings):
    name: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, description="Unique target name."
    )
    model: str = Field(
        min_length=1,
        description="Catalog name, Hugging Face repo id, path to "
        "config.json/params.json, or a glob of config files (relative to this "
        "file).",
    )
    gpu: str = Field(min_length=1, description="GPU name (`kvplan gpus`).")


class PolicyFile(_Strict):
    """kvplan check policy: serving targets and what each must achieve."""

    model_config = ConfigDict(title="kvplan policy")

    version: Literal[1] = 1
    gpu_file: str | None = Field(
        None, min_length=1, description="YAML file of extra GPUs (relative to this file)."
    )
    defaults: DefaultsPolicy | None = None
    targets: list[TargetPolicy] = Field(min_length=1)


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file (shipped as configs/policy.schema.json)."""
    schema = PolicyFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
