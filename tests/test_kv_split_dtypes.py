"""K and V in different dtypes: no engine kvplan models takes a pair, and vLLM's TurboQuant
presets (the one engine form of it) are not modelled, so each is an input error (exit 2)
that says why, never a number (docs/engines.md, kvplan/core/dtypes.py)."""

from __future__ import annotations

import pytest

from kvplan.core import dtypes
from kvplan.errors import KvplanError


@pytest.mark.parametrize(
    "name", ["turboquant_k8v4", "turboquant_k3v4_nc", "TurboQuant_4bit_nc", "turboquant_3bit_nc"]
)
def test_turboquant_presets_are_refused_with_why(name):
    with pytest.raises(KvplanError, match="TurboQuant") as exc:
        dtypes.kv_dtype(name)
    assert exc.value.kind == "input"


@pytest.mark.parametrize("name", ["fp8:bf16", "k=fp8,v=bf16", "fp8/fp16", "q8_0+q4_0"])
def test_a_k_v_pair_is_refused(name):
    with pytest.raises(KvplanError, match="K and V different dtypes"):
        dtypes.kv_dtype(name)


def test_cli_exit_code_and_setting(cli):
    r = cli(
        "fit",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--kv-dtype",
        "turboquant_k8v4",
        "--json",
    )
    assert r.code == 2
    assert r.json["error"]["setting"] == "kv_dtype"
    assert "TurboQuant" in r.json["error"]["message"]
    assert dtypes.kv_dtype("fp8_e4m3") == "fp8"  # single dtypes still parse
