"""`kvplan plan` through the real CLI: the JSON contract, consistency with `fit`, bad input
(exit 2) and targets that cannot be met (exit 1)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from kvplan.sources.workload_file import load_prices, parse_duration, parse_rate, read_lengths

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def test_guaranteed_equals_fit_through_the_cli():
    flags = ("--gpu", "h100-sxm", "--max-num-seqs", "1024", "--json")
    plan = run_cli("plan", MODEL, "--input-len", "2048", "--output-len", "512", *flags)
    fit = run_cli("fit", MODEL, "--ctx", "2560", *flags)
    assert plan.code == 0, plan.err
    assert plan.json["max_concurrency_guaranteed"] == fit.json["max_batch"] > 0


def test_json_carries_every_figure_and_the_identities():
    r = run_cli(
        "plan",
        MODEL,
        "--gpu",
        "h100-sxm",
        "--input-len",
        "1000",
        "--output-len",
        "200",
        "--concurrency",
        "32",
        "--gpu-hour-cost",
        "2.5",
        "--json",
    )
    assert r.code == 0, r.err
    j = r.json
    for key in (
        "max_concurrency_guaranteed",
        "max_concurrency_steady",
        "concurrency",
        "tpot_ms",
        "ttft_ms",
        "output_tokens_per_s",
        "output_tokens_per_s_per_gpu",
        "replicas",
        "gpus",
        "cost_per_million_output_tokens",
        "options",
        "curve",
    ):
        assert key in j, key
    assert j["concurrency"] == 32 and j["concurrency_from"] == "asked"
    assert j["output_tokens_per_s"] == pytest.approx(j["concurrency"] * 1000 / j["tpot_ms"])
    assert j["gpus"] == j["replicas"] * j["tp"] * j["pp"] == 1
    cost = j["cost"]
    assert cost["output_tokens_per_hour"] == pytest.approx(j["output_tokens_per_s"] * 3600)
    assert j["cost_per_million_output_tokens"] == pytest.approx(
        2.5 * j["gpus"] / (cost["output_tokens_per_hour"] / 1e6)
    )
    for point in j["curve"]:
        assert point["output_tokens_per_s"] == pytest.approx(
            point["concurrency"] * 1000 / point["tpot_ms"]
        )


def test_sizing_with_rate_and_slos():
    r = run_cli(
        "plan",
        MODEL,
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
        "--prices",
        "default",
        "--json",
    )
    assert r.code == 0, r.err
    j = r.json
    assert j["rate_per_s"] == pytest.approx(20)
    assert j["workload"]["name"] == "azure-2023-conversation"
    assert j["gpus"] == j["replicas"] * j["tp"] * j["pp"]
    assert {o["gpu"] for o in j["options"]} == {"h100-sxm", "a100-80gb"}
    # shipped prices: h100-sxm = median of its on-demand rows (2.99, 3.49); no a100-80gb row
    h100 = [o for o in j["options"] if o["gpu"] == "h100-sxm" and o["feasible"]]
    assert h100[0]["cost"]["usd_per_gpu_hour"] == pytest.approx(3.24)
    assert all(o["cost"] is None for o in j["options"] if o["gpu"] == "a100-80gb")


def test_unmeetable_slo_exits_1_and_names_the_closest():
    r = run_cli(
        "plan",
        MODEL,
        "--gpu",
        "a100-80gb",
        "--input-len",
        "1000",
        "--output-len",
        "100",
        "--rate",
        "5/s",
        "--slo-tpot",
        "0.1ms",
    )
    assert r.code == 1
    assert "closest" in r.out


def test_concurrency_beyond_memory_exits_1():
    r = run_cli(
        "plan",
        MODEL,
        "--gpu",
        "l4",
        "--input-len",
        "8000",
        "--output-len",
        "8000",
        "--concurrency",
        "200",
        "--json",
    )
    assert r.code == 1
    assert r.json["targets_met"] is False


@pytest.mark.parametrize(
    "args",
    [
        ("--input-len", "-5", "--output-len", "10"),
        ("--input-len", "0", "--output-len", "10"),
        ("--input-len", "10"),
        ("--input-len", "10", "--output-len", "10", "--rate", "5"),
        ("--input-len", "10", "--output-len", "10", "--rate", "5/fortnight"),
        ("--input-len", "10", "--output-len", "10", "--rate", "1/s", "--slo-tpot", "50"),
        ("--workload", "no-such-shape"),
        ("--input-len", "10", "--output-len", "10", "--cpu-offload", "200"),
        ("--input-len", "10", "--output-len", "10", "--prefix-len", "11"),
        (),
    ],
)
def test_bad_input_is_one_line_exit_2(args):
    r = run_cli("plan", MODEL, "--gpu", "h100-sxm", *args)
    assert r.code == 2, (args, r.out, r.err)
    assert r.err.count("\n") == 1 and r.err.startswith("Error:")


def test_empty_and_malformed_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = tmp_path / "bad.csv"
    bad.write_text("input_len,output_len\n100,50\n100,abc\n")
    zero = tmp_path / "zero.jsonl"
    zero.write_text('{"input_length": 10, "output_length": 0}\n')
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input_length": 10, "output_length": 5}\n{oops\n')
    for f, where in ((empty, "empty"), (bad, "line 3"), (zero, "line 1"), (broken, "line 2")):
        r = run_cli("plan", MODEL, "--gpu", "h100-sxm", "--workload", str(f))
        assert r.code == 2, f
        assert where in r.err


def test_file_formats(tmp_path):
    azure = tmp_path / "azure.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nt,374,44\nt,396,109\nt,374,44\n")
    w = read_lengths(str(azure))
    assert w.requests == 3 and len(w.pairs) == 2
    assert w.mean_input == pytest.approx((374 * 2 + 396) / 3)
    bare = tmp_path / "bare.csv"
    bare.write_text("100,10\n300,30\n")
    assert read_lengths(str(bare)).mean_output == 20
    mooncake = tmp_path / "m.jsonl"
    mooncake.write_text(
        '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [1]}\n'
        '{"timestamp": 1, "input_length": 6472, "output_length": 26, "hash_ids": [2]}\n'
    )
    w = read_lengths(str(mooncake))
    assert (w.mean_input, w.mean_output) == (6713.5, 39)


def test_file_workload_through_cli(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text("input_len,output_len\n1000,100\n3000,300\n")
    r = run_cli("plan", MODEL, "--gpu", "h100-sxm", "--workload", str(f), "--json")
    assert r.code == 0, r.err
    occ = r.json["occupancy"]
    # residents weighted by output length: (100 x ~1050 + 300 x ~3150) / 400 tokens
    assert occ["mean_context"] == pytest.approx((100 * 1049.5 + 300 * 3149.5) / 400)


def test_units_and_prices():
    assert parse_rate("5/s") == 5
    assert parse_rate("300/min") == 5
    assert parse_rate("36000/h") == 10
    assert parse_duration("50ms", "--slo-tpot") == pytest.approx(0.05)
    assert parse_duration("2s", "--slo-ttft") == 2
    prices = load_prices("default")
    assert prices["mi300x"].usd_per_gpu_hour == pytest.approx(1.85)  # 1.50, 1.85, 6.0
    assert prices["h100-sxm"].usd_per_gpu_hour == pytest.approx(3.24)  # 2.99, 3.49
    assert "2026-05-18" in prices["mi300x"].source


def test_plot_svg(tmp_path):
    out = tmp_path / "curve.svg"
    r = run_cli(
        "plan", MODEL, "--gpu", "h100-sxm", "--input-len", "512", "--output-len", "128",
        "--plot", str(out),
    )  # fmt: skip
    assert r.code == 0, r.err
    text = out.read_text()
    assert text.startswith("<svg") and "polyline" in text


def test_plot_to_an_unwritable_path_is_one_error_line(tmp_path):
    missing = tmp_path / "no-such-dir" / "curve.svg"
    r = run_cli(
        "plan", MODEL, "--gpu", "h100-sxm", "--input-len", "512", "--output-len", "128",
        "--plot", str(missing),
    )  # fmt: skip
    assert r.code == 2
    assert r.err.strip().splitlines()[-1] == (
        f"Error: --plot {missing}: cannot write (No such file or directory)"
    )


def test_prefix_and_offload_in_json():
    r = run_cli(
        "plan", MODEL, "--gpu", "h100-sxm", "--input-len", "4000", "--output-len", "200",
        "--prefix-len", "3000", "--cpu-offload", "1GiB", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    j = r.json
    assert j["occupancy"]["shared_prefix_tokens"] == 2992  # 187 blocks of 16
    assert j["host_tier"]["tokens"] == 8192
    assert json.dumps(j)  # plain JSON all the way down


def test_plan_names_the_engine_release_line_like_fit():
    # plan printed "(TP 1, PP 1, vllm)" with no release; it now carries the line fit names
    base = ("plan", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm")
    work = ("--input-len", "1000", "--output-len", "100")
    j = run_cli(*base, *work, "--json").json
    f = run_cli("fit", *base[1:], "--ctx", "1100", "--json").json
    assert j["engine_version"] == f["engine_version"] == "vLLM 0.19"
    r = run_cli(*base, *work, "--engine", "sglang")
    assert "(TP 1, PP 1, SGLang 0.5)" in r.out
