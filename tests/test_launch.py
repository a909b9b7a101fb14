"""`fit` prints the engine's own launch command for the deployment it planned."""

from __future__ import annotations

from conftest import run_cli

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _launch(*args: str) -> str:
    r = run_cli("fit", MODEL, "--ctx", "8192", *args, "--json")
    assert r.code == 0, r.err
    return str(r.json["launch_command"])


def test_vllm_line_carries_what_was_planned():
    line = _launch("--gpu", "h100", "--tp", "2", "--gpu-memory-utilization", "0.85")
    assert line == (
        f"vllm serve {MODEL} --tensor-parallel-size 2 --max-model-len 131072 "
        "--gpu-memory-utilization 0.85 --max-num-seqs 1024 --max-num-batched-tokens 8192"
    )


def test_vllm_line_uses_a_length_that_starts():
    # On an L4 one 131,072-token request (16 GiB) does not fit: the line uses the largest
    # max_model_len vLLM would start with, the same figure fit reports.
    r = run_cli("fit", MODEL, "--ctx", "8192", "--gpu", "l4", "--json").json
    assert f"--max-model-len {r['auto_max_model_len']} " in r["launch_command"]


def test_sglang_and_trtllm_spell_their_own_flags():
    sg = _launch("--gpu", "h100", "--engine", "sglang", "--kv-dtype", "fp8")
    assert sg.startswith(f"python -m sglang.launch_server --model-path {MODEL} --tp-size 1 ")
    assert "--context-length 131072" in sg and "--kv-cache-dtype fp8_e4m3" in sg
    # SGLang 0.5.3+ default on an H100 (81,559 MiB) at TP 1: 1 - 13,440 / 81,559
    assert "--mem-fraction-static 0.835" in sg
    old = _launch("--gpu", "h100", "--engine", "sglang", "--engine-version", "0.4.3")
    assert "--mem-fraction-static 0.88" in old  # SGLang 0.4's TP-1 default
    trt = _launch("--gpu", "h100", "--engine", "trtllm", "--max-num-seqs", "64")
    assert trt.startswith(f"trtllm-serve {MODEL} --tp_size 1 --max_seq_len 131072 ")
    assert "--kv_cache_free_gpu_memory_fraction 0.9 --max_batch_size 64" in trt


def test_no_engine_no_line():
    r = run_cli("fit", MODEL, "--ctx", "8192", "--gpu", "h100", "--engine", "none", "--json")
    assert r.json["launch_command"] is None


def test_speculative_decoding_on_the_command_line():
    # vLLM: the checkpoint's MTP modules are method "mtp"; a separate draft is named as the
    # user named it; k defaults to 1 and the output says so
    r = run_cli(
        "fit",
        "deepseek-ai/DeepSeek-V3",
        "--gpu",
        "h200",
        "--tp",
        "8",
        "--ctx",
        "32768",
        "--draft-layers",
        "1",
        "--json",
    ).json
    assert r["launch_command"].endswith(
        """ --speculative-config '{"method": "mtp", "num_speculative_tokens": 1}'"""
    )
    draft = "meta-llama/Llama-3.2-1B-Instruct"
    line = _launch("--gpu", "h100", "--draft-model", draft, "--num-speculative-tokens", "4")
    assert line.endswith(
        f""" --speculative-config '{{"model": "{draft}", "num_speculative_tokens": 4}}'"""
    )
    # SGLang: a small LM drafts as STANDALONE, a chain of k drafts = k steps, topk 1,
    # k + 1 draft tokens (SGLang's DeepSeek MTP recipe: 1 / 1 / 2)
    sg = _launch(
        "--gpu",
        "h100",
        "--engine",
        "sglang",
        "--draft-model",
        draft,
        "--num-speculative-tokens",
        "3",
    )
    assert sg.endswith(
        f" --speculative-algorithm STANDALONE --speculative-draft-model-path {draft} "
        "--speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4"
    )


def test_offline_entry_point_says_the_settings_are_llm_arguments():
    # --entry-point llm plans with the LLM class's scheduler defaults; the printed line is
    # `vllm serve`'s spelling, so a note says to pass the settings to LLM(...) instead
    from conftest import run_cli

    args = ("fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192")
    j = run_cli(*args, "--entry-point", "llm", "--json").json
    assert any("LLM(...) keyword arguments" in w for w in j["warnings"])
    j = run_cli(*args, "--json").json
    assert not any("LLM(...)" in w for w in j["warnings"])


def test_a_local_checkpoint_is_served_from_its_folder(tmp_path):
    # engines read a checkpoint folder: the launch line names the folder the user pointed
    # at (not the config's name, not config.json); relative paths keep a ./ so the engine
    # does not take them for a Hub repo id
    import shutil
    from pathlib import Path

    from kvplan.api import _serve_as
    from kvplan.api import load_model as load

    src = Path(__file__).resolve().parent.parent / "configs/models/Qwen__Qwen3-8B.json"
    folder = tmp_path / "snap" / "q"
    folder.mkdir(parents=True)
    shutil.copy(src, folder / "config.json")
    for given in (str(folder), str(folder / "config.json")):
        r = run_cli("fit", given, "--gpu", "h100", "--ctx", "8192", "--json")
        assert r.code == 0, r.err
        assert r.json["launch_command"].startswith(f"vllm serve {folder} --tensor-parallel-size")
    spec = load(str(folder)).spec
    assert _serve_as(load(str(folder)).model_copy(update={"location": "snap/q"})) == "./snap/q"
    rel = load(str(folder)).model_copy(update={"location": "snap/q/config.json"})
    assert _serve_as(rel) == "./snap/q" and spec.name == "q"
    assert _serve_as(load(MODEL)) is None  # a catalog model keeps its name
