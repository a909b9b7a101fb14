"""The policy file's validator (kvplan.sources.strict, declared in kvplan.sources.policy).

It replaced strict pydantic models (issue 14: importing pydantic and building the models
cost more than the whole `kvplan check`), so every message `kvplan check` prints must stay
what it was. The reference is those models, kept in tests/policy_oracle.py: generated
documents, valid and hostile, must get the same errors (type, location, input, bounds,
order) and the same validated values from both, and the JSON Schema pydantic generates
from them must be the one kvplan writes. Then the validator's rules one by one, and what
a user sees for them (file:line: key: message).
"""

from __future__ import annotations

import datetime
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_oracle import PolicyFile
from pydantic import ValidationError

from kvplan.core.deployment import MAX_BATCH, MAX_CTX
from kvplan.core.deployment import settings as deployment_settings
from kvplan.sources.policy import POLICY, TARGET, policy_schema
from kvplan.sources.strict import Float, Int, List, Literal, Model, Str, Union

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


# ---- the same answers as the pydantic models -------------------------------------------
def _typed(value: Any) -> Any:
    """A value with its types spelled out (1 == 1.0 == True in Python; not here)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


def _oracle(doc: Any) -> tuple[Any, list[Any]]:
    try:
        return _typed(PolicyFile.model_validate(doc).model_dump()), []
    except ValidationError as exc:
        return None, [
            (e["type"], tuple(e["loc"]), _typed(e["input"]), e.get("ctx"), e["msg"])
            for e in exc.errors()
        ]


def _light(doc: Any) -> tuple[Any, list[Any]]:
    out, errors = POLICY.validate(doc)
    return (None if out is None else _typed(out)), [
        (e["type"], tuple(e["loc"]), _typed(e["input"]), e.get("ctx"), e["msg"]) for e in errors
    ]


EDGE_INTS = [0, 1, -1, -2, 2, 4096, 4097, 1 << 20, (1 << 20) + 1, MAX_CTX, MAX_CTX + 1]
EDGE_INTS += [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, 2**1023, 2**1024]
EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 1e-300, 1e19, -1e19, 9.2e18, 1e300]
EDGE_FLOATS += [math.inf, -math.inf, math.nan]
EDGE_TEXTS = ["auto", "AUTO", "-1", "1", "4GiB", "4 GiB", "4\x1cGiB", "4\u2003GiB", "4\x85GiB"]
EDGE_TEXTS += ["4GiB\n", "10%", "101%", "0B", "1.5gb", "4 gigs", "vllm", "sglang", "none", "gqa"]
EDGE_TEXTS += ["serve", "llm", "", " ", "a\x01", "a\x7f", "x" * 200, "x" * 201, "é" * 201]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_INTS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(EDGE_FLOATS),
    st.floats(),
    st.sampled_from(EDGE_TEXTS),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2030, 1, 1)),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["min", "max", "layout", "x"]), scalars, max_size=2),
)
layouts = st.lists(st.one_of(st.sampled_from(["mha", "gqa", "mqa", "mla", "hybrid"]), scalars))
kv_heads = st.one_of(
    values,
    st.dictionaries(
        st.sampled_from(["min", "max", "layout", "mx"]),
        st.one_of(values, st.integers(0, 9), layouts),
        max_size=3,
    ),
)
requirement_keys = [*POLICY.fields["targets"].node.item.fields["requirements"].node.fields]
requirements = st.one_of(
    values,
    st.dictionaries(
        st.sampled_from([*requirement_keys, "min_bach"]),
        st.one_of(values, st.sampled_from(["4GiB", "10%"]), st.integers(1, 9), kv_heads),
        max_size=4,
    ),
)
target_keys = [*TARGET.fields, "tpp", "bogus"]
targets = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.just("a"), scalars),
            "model": st.one_of(st.just(LLAMA8), scalars),
            "gpu": st.one_of(st.just("h100-sxm"), scalars),
        },
    ).flatmap(
        lambda base: st.dictionaries(
            st.sampled_from(target_keys), st.one_of(values, requirements), max_size=4
        ).map(lambda extra: {**base, **extra})
    ),
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "gpu_file": scalars,
        "defaults": st.one_of(values, targets),
        "targets": st.one_of(values, st.lists(targets, max_size=3)),
        "target": values,
    },
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(documents)
def test_same_errors_and_values_as_the_pydantic_models(doc):
    assert _light(doc) == _oracle(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"targets": [{"name": "a", "model": "m", "gpu": "g", "max_model_len": v}]}
        for v in ["abc", 0, -1, -1.0, True, "auto", "AUTO", b"auto", 2**63, 10**400, 5, 1.5]
    ]
    + [
        {"version": v, "targets": [{"name": "a", "model": "m", "gpu": "g"}]}
        for v in [1, 1.0, True, False, 2, "1", 1e19, -(2**63) - 1, None, math.nan]
    ]
    + [
        {"targets": [{"name": "a", "model": "m", "gpu": "g", key: v}]}
        for key in ("gpu_memory_utilization", "kv_memory", "draft_layers", "tp", "engine")
        for v in [0, 1, 2**1023, 2**1024, math.inf, "4\x1cGiB", "4\u2003GiB", b"vllm", -1]
    ]
    + [
        {"zz": 1, "targets": [{"name": "a", "qq": 1, "tp": "x", "ctx": 1.0}], "aa": 2},
        {"targets": [1, None, "x", [], {}]},
        {"targets": []},
        {"targets": {}},
        {"defaults": [], "targets": [{"requirements": "x"}]},
        {"targets": [{"name": "x" * 201 + "\x01", "requirements": {"kv_heads": []}}]},
    ],
)
def test_same_as_pydantic_on_known_corners(doc):
    assert _light(doc) == _oracle(doc)


def test_schema_is_the_one_pydantic_generates():
    ours = policy_schema()
    theirs = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **PolicyFile.model_json_schema(),
    }
    assert ours == theirs
    assert list(ours) == list(theirs)  # the key order the shipped file has


# ---- the validator's rules -----------------------------------------------------------------
def _errors(node: Any, value: Any) -> list[tuple[str, tuple, Any]]:
    errors: list = []
    node.check(value, ("k",), errors)
    return [(e["type"], e["loc"], e.get("ctx")) for e in errors]


def test_integers_are_never_bools_or_floats_and_keep_their_bounds():
    node = Int(gt=0, le=4096)
    assert _errors(node, 4096) == [] and node.check(4096, (), []) == 4096
    assert _errors(node, True) == [("int_type", ("k",), None)]
    assert _errors(node, 8.0) == [("int_type", ("k",), None)]
    assert _errors(node, "8") == [("int_type", ("k",), None)]
    assert _errors(node, 0) == [("greater_than", ("k",), {"gt": 0})]
    assert _errors(node, 4097) == [("less_than_equal", ("k",), {"le": 4096})]
    assert _errors(node, 10**40) == [("less_than_equal", ("k",), {"le": 4096})]


def test_numbers_are_finite_and_stored_as_float():
    node = Float(gt=0, le=1)
    assert node.check(1, (), []) == 1.0 and isinstance(node.check(1, (), []), float)
    assert _errors(node, math.nan) == [("finite_number", ("k",), None)]
    assert _errors(node, -math.inf) == [("finite_number", ("k",), None)]
    assert _errors(node, False) == [("float_type", ("k",), None)]
    assert _errors(node, 2**1024) == [("float_type", ("k",), None)]  # no float holds it
    assert _errors(node, 0) == [("greater_than", ("k",), {"gt": 0.0})]
    assert _errors(node, 1.5) == [("less_than_equal", ("k",), {"le": 1.0})]


def test_strings_check_length_then_pattern_on_the_whole_text():
    node = Str(min_length=1, max_length=3, pattern=r"^[0-9]+\s*[bB]$")
    assert _errors(node, "1 B") == [] and _errors(node, "1\u2003B") == []
    assert _errors(node, b"1B") == [("string_type", ("k",), None)]
    assert _errors(node, "") == [("string_too_short", ("k",), {"min_length": 1})]
    assert _errors(node, "12345") == [("string_too_long", ("k",), {"max_length": 3})]
    # a trailing newline is not the end of the text; U+001C is no space (Rust's \s)
    for text in ("1B\n", "1\x1cB"):
        assert _errors(node, text)[0][0] == "string_pattern_mismatch"


def test_literals_and_unions():
    node = Literal("auto", -1)
    assert node.check(-1.0, (), []) == -1 and node.check("auto", (), []) == "auto"
    assert _errors(node, "AUTO") == [("literal_error", ("k",), {"expected": "'auto' or -1"})]
    assert _errors(node, 2**63)[0][0] == "int_parsing_size"
    assert Literal(1).check(True, (), []) == 1  # pydantic matches literals by equality
    union = Union(Int(gt=0), Literal("auto", -1))
    assert union.check(-1, (), []) == -1 and union.check(7, (), []) == 7
    assert _errors(union, 0) == [
        ("greater_than", ("k", "constrained-int"), {"gt": 0}),
        ("literal_error", ("k", "literal['auto',-1]"), {"expected": "'auto' or -1"}),
    ]


def test_models_report_fields_in_order_then_unknown_keys():
    node = Model("M", {"a": _field(Int(), required=True), "b": _field(List(Str(), min_length=1))})
    out, errors = node.validate({"z": 1, "b": []})
    assert out is None
    assert [(e["type"], e["loc"]) for e in errors] == [
        ("missing", ("a",)),
        ("too_short", ("b",)),
        ("extra_forbidden", ("z",)),
    ]
    assert node.validate({"a": 1}) == ({"a": 1, "b": None}, [])
    assert node.validate([])[1][0]["type"] == "model_type"


def _field(node: Any, **kwargs: Any) -> Any:
    from kvplan.sources.strict import Field

    return Field(node, **kwargs)


def test_every_deployment_setting_is_a_target_key():
    assert set(deployment_settings()) <= set(TARGET.fields)
    assert {"ctx", "batch", "requirements", "model", "gpu", "name"} <= set(TARGET.fields)
    assert TARGET.fields["ctx"].node.le == MAX_CTX and TARGET.fields["batch"].node.le == MAX_BATCH


# ---- what a user sees: file:line: key: message, exit 2 ----------------------------------
def _target(body: str) -> str:
    return f"targets:\n  - name: a\n    model: {LLAMA8}\n    gpu: h100-sxm\n{body}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _target('    ctx: 8192\n    batch: 4\n    kv_memory: "4\\x1cGiB"\n'),
            "{p}:7: target 'a': kv_memory: must be a size such as 4GiB or 512MiB, got '4\\x1cGiB'",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    gpu_memory_utilization: .nan\n"),
            "{p}:7: target 'a': gpu_memory_utilization: must be a finite number, got nan",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    draft_layers: -1\n"),
            "{p}:7: target 'a': draft_layers: must be greater than -1, got -1",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    tp: 5000\n"),
            "{p}:7: target 'a': tp: must be at most 4096, got 5000",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    revision: ''\n"),
            "{p}:7: target 'a': revision: must not be empty, got ''",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    max_model_len: 0\n"),
            "{p}:7: target 'a': max_model_len.constrained-int: must be greater than 0, got 0 "
            "(and 1 more problem)",
        ),
        (
            "version: 2\n" + _target("    ctx: 8192\n    batch: 4\n"),
            "{p}:1: version: must be one of 1, got 2",
        ),
        (
            _target(
                "    ctx: 8192\n    batch: 4\n    requirements:\n      kv_heads:\n"
                "        layout: []\n"
            ),
            "{p}:9: target 'a': requirements.kv_heads.layout: must not be empty, got a list",
        ),
        (
            _target("    ctx: 8192\n    batch: 4\n    requirements: {max_decode_ms: 0}\n"),
            "{p}:7: target 'a': requirements.max_decode_ms: must be greater than 0, got 0",
        ),
        (
            "defaults:\n  requirements:\n    kv_heads: {mx: 2}\n" + _target("    ctx: 8\n"),
            "{p}:3: defaults: requirements.kv_heads: unknown key 'mx' (did you mean 'max'?)",
        ),
        (
            "targets:\n  - {name: a, model: m, gpu: l4, ctx: 8, batch: 1, tpp: 2}\n",
            "{p}:2: target 'a': unknown key 'tpp' (did you mean 'tp'?)",
        ),
        (
            "targets:\n  - name: a\x1c\n",
            "{p}:2: invalid YAML: unacceptable character #x001c: special characters are not "
            "allowed",
        ),
        (
            "targets:\n  - &t {name: a, model: m, gpu: l4, ctx: 8, batch: 1}\n  - *t\n",
            "{p}:3: YAML aliases (*t) are not allowed in a policy (repeat the value, or put "
            "shared settings under defaults:)",
        ),
    ],
)
def test_messages_point_at_the_line_and_key(tmp_path, monkeypatch, capsys, text, message):
    from kvplan.cli.app import main

    policy = tmp_path / "kvplan.yaml"
    policy.write_text(text)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", ["kvplan", "check", "--policy", str(policy)])
    with pytest.raises(SystemExit) as exc:
        main()
    out, err = capsys.readouterr()
    assert (exc.value.code, out) == (2, "")
    assert err == "Error: " + message.format(p=policy) + "\n"


def test_defaults_values_are_validated_where_they_are_written(tmp_path: Path):
    policy = tmp_path / "kvplan.yaml"
    policy.write_text("defaults:\n  tp: 2.5\n" + _target("    ctx: 8\n    batch: 1\n"))
    r = run_cli("check", "--policy", str(policy), "--format", "json")
    assert r.code == 2
    assert r.json["error"]["message"] == (f"{policy}:2: defaults: tp: must be an integer, got 2.5")


# ---- the libyaml fast path reads what the pure-Python loader reads --------------------------
def _read(text: str, fast: bool) -> tuple[str, str]:
    from kvplan.errors import KvplanError
    from kvplan.sources.policy import _load_text

    try:
        return "ok", repr(_load_text(text, origin="p.yaml", fast=fast))
    except KvplanError as exc:
        return "error", str(exc)
    except Exception as exc:  # the same crash both ways counts as the same (not this test's)
        return "crash", type(exc).__name__


EXAMPLE_TEXT = (Path(__file__).resolve().parent.parent / "configs/examples/kvplan.yaml").read_text()
YAML_CHARS = list(" \n:-[]{},#&*!|>'\"%@`?\t\\.a1\x85\u2028\ufeff\x00\xa0é")
plain_data = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2030, 1, 1)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    plain_data,
    st.sampled_from([None, True, False]),
    st.booleans(),
    st.sampled_from([2, 4]),
    st.sampled_from([None, 20]),
)
def test_fast_reader_matches_the_full_loader_on_dumped_documents(doc, flow, unicode, indent, width):
    text = yaml.safe_dump(
        doc, default_flow_style=flow, allow_unicode=unicode, indent=indent, width=width
    )
    assert _read(text, fast=True) == _read(text, fast=False)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(EXAMPLE_TEXT)),
            st.integers(0, 3),
            st.text(st.sampled_from(YAML_CHARS), max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fast_reader_matches_the_full_loader_on_mutated_policies(edits):
    text = EXAMPLE_TEXT
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    assert _read(text, fast=True) == _read(text, fast=False)


def test_fast_reader_leaves_anchors_tags_and_depth_to_the_full_loader():
    from kvplan.sources.policy import _compose_fast, _Unusual

    for text in (
        "a: &x 1\n",
        "a: *x\n",
        "a: !!str 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "a: 1\n---\nb: 2\n",
        "a: " + "[" * 17 + "]" * 17 + "\n",
        "a: [1\n",
        "a: \x07\n",
    ):
        with pytest.raises(_Unusual):
            _compose_fast(text)
    loader, node = _compose_fast("a: " + "[" * 15 + "]" * 15 + "\n")
    loader.dispose()
    assert node is not None


def test_an_anchor_without_alias_reads_as_before(tmp_path: Path):
    """Anchors alone expand nothing, so the full loader keeps taking them (only aliases are
    refused); the fast path hands such a document over to it."""
    from kvplan.sources.policy import _load_text

    text = "targets:\n  - &t {name: a, model: m, gpu: l4, ctx: 8, batch: 1}\n"
    data, lines = _load_text(text, origin="p.yaml")
    assert data == {"targets": [{"name": "a", "model": "m", "gpu": "l4", "ctx": 8, "batch": 1}]}
    assert lines[("targets", 0, "batch")] == 2
    assert (data, lines) == _load_text(text, origin="p.yaml", fast=False)


def test_block_scalar_header_with_a_comment_and_no_space_is_refused_both_ways():
    # libyaml takes "|#" as a block scalar with a comment; the Python scanner (and the YAML
    # spec: whitespace before '#') refuses it. Found by the mutation test above: the fast
    # path must hand such text to the full loader, so both readers give its error.
    text = "version: 1\ntargets:\n|# a comment\n  - name: a\n"
    fast, full = _read(text, fast=True), _read(text, fast=False)
    assert fast == full
    assert full[0] == "error" and full[1].startswith("p.yaml:3: invalid YAML")
