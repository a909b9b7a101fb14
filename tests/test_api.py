"""The Python API answers exactly what the CLI prints: `to_json()` is the --json object
without its envelope, errors are the same typed exception, and docs/api.md runs."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import kvplan

ROOT = Path(__file__).resolve().parent.parent
ENVELOPE = ("schema_version", "kvplan_version", "command")

CASES = [
    (
        "size",
        dict(model="meta-llama/Llama-2-70b", ctx=4096, batch=8, kv_dtype="fp8"),
        ["meta-llama/Llama-2-70b", "--ctx", "4096", "--batch", "8", "--kv-dtype", "fp8"],
    ),
    (
        "fit",
        dict(model="google/gemma-2-9b-it", gpu="l40s", ctx=8192),
        ["google/gemma-2-9b-it", "--gpu", "l40s", "--ctx", "8192"],
    ),
    (
        "fit",
        dict(model="deepseek-ai/DeepSeek-V2-Lite", gpu="a100-80gb", tp=2, batch=8, engine="sglang"),
        [
            "deepseek-ai/DeepSeek-V2-Lite",
            "--gpu",
            "a100-80gb",
            "--tp",
            "2",
            "--batch",
            "8",
            "--engine",
            "sglang",
        ],
    ),
    (
        "pick_g",
        dict(gpu="a100-80gb", ctx=65536, batch=32),
        ["--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32"],
    ),
    (
        "roofline",
        dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", batch=8, kv_heads=4),
        [
            "meta-llama/Llama-3.1-8B-Instruct",
            "--gpu",
            "h100-sxm",
            "--batch",
            "8",
            "--kv-heads",
            "4",
        ],
    ),
]


PLAN_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CASES += [
    (  # fixed lengths, an asked concurrency and a deployment setting (fit's mechanism)
        "plan",
        dict(
            model=PLAN_MODEL,
            gpu="h100-sxm",
            input_len=2048,
            output_len=512,
            concurrency=16,
            gpu_memory_utilization=0.85,
        ),
        [
            PLAN_MODEL,
            "--gpu",
            "h100-sxm",
            "--input-len",
            "2048",
            "--output-len",
            "512",
            "--concurrency",
            "16",
            "--gpu-memory-utilization",
            "0.85",
        ],
    ),
    (  # a named workload shape with a shared prefix, under SGLang
        "plan",
        dict(model=PLAN_MODEL, gpu="a100-80gb", workload="rag", prefix_len=512, engine="sglang"),
        [
            PLAN_MODEL,
            "--gpu",
            "a100-80gb",
            "--workload",
            "rag",
            "--prefix-len",
            "512",
            "--engine",
            "sglang",
        ],
    ),
    (  # SLO sizing over two GPUs with prices
        "plan",
        dict(
            model=PLAN_MODEL,
            gpu="h100-sxm,a100-80gb",
            workload="chat",
            rate="1200/min",
            slo_tpot="50ms",
            slo_ttft="2s",
            gpu_hour_cost="h100-sxm=2.49,a100-80gb=1.5",
        ),
        [
            PLAN_MODEL,
            "--gpu",
            "h100-sxm,a100-80gb",
            "--workload",
            "chat",
            "--rate",
            "1200/min",
            "--slo-tpot",
            "50ms",
            "--slo-ttft",
            "2s",
            "--gpu-hour-cost",
            "h100-sxm=2.49,a100-80gb=1.5",
        ],
    ),
]


@pytest.mark.parametrize(("fn", "kwargs", "argv"), CASES)
def test_to_json_is_the_cli_payload(cli, fn, kwargs, argv):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", None)
    result = getattr(kvplan, fn)(model, **kwargs)
    r = cli(fn.replace("_", "-"), *argv, "--json")
    assert r.code in (0, 1), r.err
    payload = {k: v for k, v in r.json.items() if k not in ENVELOPE}
    assert result.to_json() == payload


def test_errors_are_the_typed_exception_the_cli_reports(cli):
    with pytest.raises(kvplan.KvplanError) as e:
        kvplan.fit("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", ctx=1000, tp=3)
    assert e.value.setting == "tp"
    r = cli(
        "fit",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--ctx",
        "1000",
        "--tp",
        "3",
        "--json",
    )
    assert r.code == 2
    assert r.json["error"]["setting"] == "tp"
    assert r.json["error"]["message"] == str(e.value)
    with pytest.raises(kvplan.KvplanError) as e:
        kvplan.fit("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", no_such_knob=1)
    assert e.value.setting == "no_such_knob"
    assert str(e.value) == "unknown deployment setting 'no_such_knob'"  # nothing close
    with pytest.raises(kvplan.KvplanError) as e:  # a near miss names the keyword meant
        kvplan.fit("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", enable_prefix_cache=True)
    assert e.value.setting == "enable_prefix_cache"
    assert str(e.value) == (
        "unknown deployment setting 'enable_prefix_cache' (did you mean 'enable_prefix_caching'?)"
    )


def test_plan_takes_numbers_in_internal_units():
    # from Python, a rate is requests per second and an SLO is seconds: 1200/min = 20/s
    text = kvplan.plan(
        PLAN_MODEL, gpu="h100-sxm", workload="chat", rate="1200/min", slo_tpot="50ms"
    )
    numbers = kvplan.plan(PLAN_MODEL, gpu="h100-sxm", workload="chat", rate=20, slo_tpot=0.05)
    assert numbers.rate_per_s == 20
    assert numbers.slo_tpot_ms == 50
    assert numbers.to_json() == text.to_json()


@pytest.mark.parametrize(
    ("kwargs", "argv", "setting"),
    [
        (dict(input_len=0, output_len=10), ["--input-len", "0", "--output-len", "10"], "input_len"),
        (
            dict(input_len=100, output_len=10, gpu_memory_utilization=1.5),
            ["--input-len", "100", "--output-len", "10", "--gpu-memory-utilization", "1.5"],
            "gpu_memory_utilization",
        ),
        (
            dict(workload="chat", kv_dtype="fp7"),
            ["--workload", "chat", "--kv-dtype", "fp7"],
            "kv_dtype",
        ),
        (
            dict(workload="chat", prefix_len=-1),
            ["--workload", "chat", "--prefix-len=-1"],
            "prefix_len",
        ),
    ],
)
def test_plan_errors_are_the_typed_exception_the_cli_reports(cli, kwargs, argv, setting):
    with pytest.raises(kvplan.KvplanError) as e:
        kvplan.plan(PLAN_MODEL, gpu="h100-sxm", **kwargs)
    assert e.value.setting == setting
    r = cli("plan", PLAN_MODEL, "--gpu", "h100-sxm", *argv, "--json")
    assert r.code == 2, r.err
    assert r.json["error"]["setting"] == setting
    assert r.json["error"]["message"] == str(e.value)
    assert r.json["error"]["kind"] == e.value.kind


def test_import_kvplan_is_cheap():
    probe = (
        "import sys, kvplan\n"
        "print(','.join(m for m in sys.modules if m.startswith(('pydantic', 'typer', "
        "'rich', 'numpy', 'yaml', 'kvplan.'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_docs_api_examples_run():
    failures, tried = doctest.testfile(
        str(ROOT / "docs" / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert tried > 10
    assert failures == 0


def test_py_typed_marker_ships():
    assert (ROOT / "kvplan" / "py.typed").is_file()


def test_all_lists_the_lazy_api():
    # __all__ is written out for type checkers; it must name exactly the lazily loaded API
    assert kvplan.__all__ == [*kvplan._API, "KvplanError", "__version__"]
    for name in kvplan.__all__:
        assert getattr(kvplan, name) is not None
