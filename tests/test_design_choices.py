"""pick-g's design knobs are declared once (`DesignChoices`): every field is a pick-g option
and a `kvplan.pick_g` keyword, goes through the one validator, and errors name the knob."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from conftest import run_cli

import kvplan
from kvplan.core.deployment import Kind, flag_name
from kvplan.core.design_choices import DesignChoices, Role, knobs
from kvplan.errors import KvplanError
from kvplan.sources import validate

ROOT = Path(__file__).resolve().parent.parent
WORK = dict(gpu="a100-80gb", ctx=4096, batch=8, search=False)
DESIGN = dict(layers=40, heads=40, head_dim=128)
# A value each kind refuses (0 is below every INT knob's lower bound of 1).
BAD = {Kind.INT: 0, Kind.FLAG: "yes", Kind.COUNT: "x"}


def test_every_field_is_a_pick_g_option_with_its_help() -> None:
    from kvplan.cli.app import load_command

    options = {p.name: p for p in load_command("pick-g").params}
    assert [f.name for f in fields(DesignChoices)] == list(knobs())
    for name, knob in knobs().items():
        assert name in options, name
        assert options[name].opts == [flag_name(name)], name
        assert options[name].help == knob.help, name
        assert options[name].is_flag == (knob.kind is Kind.FLAG), name


@pytest.mark.parametrize("name", list(knobs()))
def test_every_field_is_a_pick_g_keyword_checked_by_the_validator(name: str) -> None:
    """A bad value for each knob reaches the design validator (not the deployment one,
    which would say 'unknown deployment setting') and the error names the knob."""
    with pytest.raises(KvplanError) as e:
        kvplan.pick_g(**WORK, **{**DESIGN, name: BAD[knobs()[name].kind]})
    assert e.value.setting == name
    assert "unknown" not in str(e.value)


def test_design_object_and_keywords_give_the_same_answer() -> None:
    by_keywords = kvplan.pick_g(**WORK, **DESIGN, vocab=128256, tie_embeddings=True)
    typed = kvplan.pick_g(**WORK, design=DesignChoices(**DESIGN, vocab=128256, tie_embeddings=True))
    assert typed.to_json() == by_keywords.to_json()
    assert typed.design is not None and typed.design.vocab == 128256
    assert typed.design.vocab_rule == "given (--vocab)"
    with pytest.raises(KvplanError) as e:
        kvplan.pick_g(**WORK, design=DesignChoices(**DESIGN), vocab=1000)
    assert e.value.setting == "vocab"


def test_params_is_a_count_and_applies_to_a_model_too() -> None:
    # 13e9 parameters at G=H in bf16 = 26e9 bytes, whichever way the count is written
    for written in ("13B", "13e9", 13_000_000_000):
        r = kvplan.pick_g(**WORK, **DESIGN, params=written)
        assert r.rows[0].weights_bytes == 26_000_000_000
    model = kvplan.pick_g("meta-llama/Llama-2-13b-hf", **WORK, params="13B")
    assert model.rows[0].weights_bytes == 13_000_000_000 * 2  # the checkpoint is fp16
    with pytest.raises(KvplanError) as e:
        kvplan.pick_g(**WORK, **DESIGN, params="2e15")  # above the 1e15 plausible bound
    assert e.value.setting == "params" and "absurdly large" in str(e.value)


@pytest.mark.parametrize(
    ("knobs_given", "message", "setting"),
    [
        (dict(layers=40, heads=40), "designing from scratch needs --head-dim", "head_dim"),
        (
            dict(**DESIGN, experts=8),
            "a MoE design needs both --experts and --experts-per-token",
            "experts_per_token",
        ),
        (
            dict(**DESIGN, experts=8, experts_per_token=9),
            "--experts-per-token 9 exceeds --experts 8",
            "experts_per_token",
        ),
        (
            dict(**DESIGN, expert_intermediate=9),
            "--expert-intermediate needs --experts and --experts-per-token",
            "expert_intermediate",
        ),
        (
            dict(**DESIGN, global_every=6),
            "--global-every needs --window (the sliding window in tokens)",
            "global_every",
        ),
        (
            dict(**DESIGN, window=100, mla_rank=5),
            "--mla-rank and --window cannot be combined in one design",
            "mla_rank",
        ),
        ({**DESIGN, "layers": 2048}, "--layers 2,048 is absurdly large (limit 1,024)", "layers"),
    ],
)
def test_how_knobs_go_together(knobs_given: dict, message: str, setting: str) -> None:
    with pytest.raises(KvplanError) as e:
        kvplan.pick_g(**WORK, **knobs_given)
    assert e.value.message == message and e.value.setting == setting


def test_design_only_knobs_are_refused_with_a_model() -> None:
    """Every DESIGN knob (hidden included: it was silently ignored with a MODEL) is refused
    with a MODEL; geometry knobs with a MODEL are a conflict; params applies to both."""
    design_only = [n for n, k in knobs().items() if k.role is Role.DESIGN]
    assert "hidden" in design_only and "params" not in design_only
    for name in design_only:
        value = True if knobs()[name].kind is Kind.FLAG else 64
        with pytest.raises(KvplanError) as e:
            kvplan.pick_g("meta-llama/Llama-2-13b-hf", **WORK, **{name: value})
        assert e.value.message == (
            f"{flag_name(name)} describes a design from flags; give --layers, --heads and "
            "--head-dim instead of MODEL (a model's own config sets it)"
        )
        assert e.value.setting == name
    with pytest.raises(KvplanError) as e:
        kvplan.pick_g("meta-llama/Llama-2-13b-hf", **WORK, **DESIGN)
    assert "not both" in e.value.message and e.value.setting == "layers"


def test_cli_errors_name_the_knob() -> None:
    r = run_cli(
        "pick-g", "--gpu", "a100-80gb", "--ctx", "4096", "--batch", "8", "--layers", "40",
        "--heads", "40", "--head-dim", "128", "--vocab", "0", "--json",
    )  # fmt: skip
    assert r.code == 2
    assert r.json["error"] == {
        "kind": "input",
        "message": "--vocab must be a positive integer, got 0",
        "setting": "vocab",
    }


def test_geometry_bounds_are_the_config_keys_ranges() -> None:
    """The screening layer imports no core module (it runs before every command), so the
    design knobs restate the config keys' plausible ranges; they must stay the same."""
    k = knobs()
    assert k["heads"].hi == validate.HEADS.hi
    assert k["head_dim"].hi == validate.HEAD_DIM.hi
    assert k["hidden"].hi == validate.HIDDEN.hi


def test_docs_api_names_every_knob() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    for name in knobs():
        assert f"`{name}`" in text, name


def test_every_design_knob_is_stated_in_the_assumptions_block() -> None:
    """What a design assumed is stated for each design-only knob (the JSON `design` block),
    with the rule that chose it where one did. Not stated there: the geometry (in the
    header) and hidden (in the FFN rule when it decides it)."""
    from kvplan.core.design import DesignAssumptions

    stated = set(DesignAssumptions.model_fields)
    for name, knob in knobs().items():
        if knob.role is Role.DESIGN and name != "hidden":
            assert name in stated, name
