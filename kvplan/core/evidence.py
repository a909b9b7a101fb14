"""Published quality evidence on KV-head sharing (GQA/MQA) and latent caches (MLA).

Data, not a model: each study reports its own measurements (configs/quality_evidence.yaml
with sources). `pick-g` shows the studies whose layouts appear among its rows, labelled as
published evidence for the study's setting; kvplan never turns them into a prediction.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from kvplan.core.frozen import FieldError, Frozen

Layout = Literal["mha", "gqa", "mqa", "mla"]


LAYOUTS = frozenset(get_args(Layout))


class _Frozen(Frozen):
    """Built from the bundled YAML's mappings: unknown keys and missing fields raise."""


class StudyResult(_Frozen):
    layout: Layout
    label: str
    value: float
    note: str | None = None

    def _check(self) -> None:
        if self.layout not in LAYOUTS:
            raise FieldError(("layout",), f"Input should be one of {sorted(LAYOUTS)}")
        if not isinstance(self.value, float):
            raise FieldError(("value",), "Input should be a valid number")


class Study(_Frozen):
    id: str
    title: str
    source: str  # URL and table
    setting: str  # the models and training the numbers hold for
    metric: str
    results: tuple[StudyResult, ...] = ()
    read_in: str  # where the numbers were read (second-hand copies)

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        data["results"] = tuple(StudyResult.model_validate(r) for r in data.get("results", ()))
        return data

    def layouts(self) -> set[str]:
        return {r.layout for r in self.results}

    def line(self) -> str:
        """'GQA (Ainslie et al., 2023): MHA-XXL 47.2, GQA-8-XXL 47.1, ... [source]'."""
        values = "; ".join(f"{r.label} {r.value:.1f}" for r in self.results)
        if not values:
            return f"{self.title}, {self.source}: {self.metric}. Setting: {self.setting}."
        return (
            f"{self.title}, {self.source}: {values}. Metric: {self.metric}. "
            f"Setting: {self.setting}."
        )


class EvidenceFile(_Frozen):
    schema_version: Literal[1]
    studies: tuple[Study, ...]

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "studies" in data:
            data["studies"] = tuple(Study.model_validate(s) for s in data["studies"])
        return data

    def _check(self) -> None:
        if self.schema_version != 1:
            raise FieldError(("schema_version",), "Input should be 1")


def relevant(studies: tuple[Study, ...], layouts: set[str]) -> tuple[Study, ...]:
    """Studies about a layout present in the table other than plain MHA (the baseline every
    study has): GQA/MQA studies for GQA/MQA rows, the MLA study only beside an MLA row. A
    study without transcribed numbers is kept when MQA is present: its claim is about MQA."""
    out = []
    for s in studies:
        if (s.layouts() - {"mha"}) & layouts or (not s.results and "mqa" in layouts):
            out.append(s)
    return tuple(out)
