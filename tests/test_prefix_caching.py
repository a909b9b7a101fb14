"""Prefix caching (`enable_prefix_caching`): each engine release's default, vLLM's Mamba cache
mode and the state pages it keeps per request, the CLI flag pair, the policy key, the API
keyword, the launch line, and the values an engine refuses.

Hand-computed from vLLM's source (kvplan.core.prefix_cache gives every file:line):
MambaSpec.max_memory_usage_bytes holds 1 + k state pages per request per state group with
prefix caching off, 2 + k in Mamba cache mode "align" (what --enable-prefix-caching picks for
a Gated DeltaNet hybrid in 0.15-0.27 and for every hybrid from 0.28.0).

Qwen3.6-35B-A3B-NVFP4 with an fp8 KV cache on vLLM (the club-3090 rows qwen36-35b-a3b-nvfp4-
rtx5090-v0240-len128k-fp8kv-0706 / -0709 of tests/data/engine_logs.yaml): 30 GDN + 10 full-
attention layers, 2 KV heads x 256 x (K,V) x 1 B = 1,024 B per token per attention layer; the
GDN state page (2,146,304 B) raises the attention block to 2096 tokens (2096 x 1,024 B =
exactly that page); 4 groups of 10 layers (3 state, 1 attention), so a block is 10 pages =
21,463,040 B. A request of 131,072 tokens holds cdiv(131,072, 2096) = 63 attention blocks +
3 state groups x pages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import gpu, run_cli

from kvplan.core.capacity import (
    Deployment,
    logged_kv_tokens,
    max_batch,
    max_concurrency,
    plan,
)
from kvplan.core.engines import Engine, profile_for
from kvplan.core.prefix_cache import MambaCacheMode, default_prefix_caching, mamba_cache_mode
from kvplan.sources.catalog import load_catalog

GiB = 1024**3
CATALOG = load_catalog()
QWEN36 = "nvidia/Qwen3.6-35B-A3B-NVFP4"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
BLOCK_BYTES = 10 * 2096 * 1024  # 10 pages of 2096 tokens x 1,024 B
LEN = 131_072


def load(name: str):
    entry = CATALOG.find(name)
    assert entry is not None, name
    return CATALOG.load(entry)


def qwen36(budget_gib: float, **changes) -> Deployment:
    """The logged runs' settings (vLLM 0.24.0, fp8 KV, 131,072 tokens, one sequence, 8192
    batched tokens) on the logged KV budget."""
    settings = {
        "engine_version": "0.24.0",
        "kv_dtype": "fp8",
        "max_model_len": LEN,
        "max_num_seqs": 1,
        "max_num_batched_tokens": 8192,
        "kv_memory": int(budget_gib * GiB),
        **changes,
    }
    return Deployment(spec=load(QWEN36), **{"gpu": gpu("rtx-5090"), **settings})


@pytest.mark.parametrize(
    ("budget", "blocks", "logged"), [(5.98, 299, 567_978), (6.01, 300, 569_878)]
)
def test_qwen36_rows_two_state_pages_per_group_reproduce_the_logged_tokens(
    budget: float, blocks: int, logged: int
) -> None:
    """Prefix caching on (the rows' 'enable_prefix_caching': True): align mode, 2 pages per
    state group, 63 + 3 x 2 = 69 blocks a request: the logged 4.33x / 4.35x and tokens."""
    assert int(budget * GiB) // BLOCK_BYTES == blocks
    p = plan(qwen36(budget, enable_prefix_caching=True))
    d = p.deployment
    assert d.mamba_cache_mode is MambaCacheMode.ALIGN and d.state_pages == 2
    assert p.hybrid is not None and p.hybrid.block_size == 2096
    assert p.num_blocks == blocks
    assert max_concurrency(p, LEN) == pytest.approx(blocks / 69)
    assert int(logged_kv_tokens(p)) == int(blocks / (63 + 3 * 2) * LEN) == logged
    assert f"{max_concurrency(p, LEN):.2f}" == {299: "4.33", 300: "4.35"}[blocks]


def test_qwen36_prefix_caching_off_keeps_one_state_page() -> None:
    """0.24.0's default for a hybrid is off (not yet on by default): 63 + 3 = 66 blocks."""
    p = plan(qwen36(5.98))
    assert p.deployment.prefix_caching is False
    assert p.deployment.mamba_cache_mode is MambaCacheMode.NONE
    assert p.deployment.state_pages == 1
    assert max_concurrency(p, LEN) == pytest.approx(299 / 66)
    assert int(logged_kv_tokens(p)) == int(299 / 66 * LEN)
    # explicitly off is the same
    off = plan(qwen36(5.98, enable_prefix_caching=False))
    assert int(logged_kv_tokens(off)) == int(logged_kv_tokens(p))


def test_qwen36_on_by_default_from_vllm_0_28() -> None:
    """0.28.0 turns prefix caching on for hybrids and picks align: 2 pages with no flag."""
    p = plan(qwen36(5.98, engine_version="0.28.0"))
    assert p.deployment.prefix_caching is True
    assert p.deployment.state_pages == 2
    assert max_concurrency(p, LEN) == pytest.approx(299 / 69)


def test_speculative_tokens_add_to_align_pages() -> None:
    """2 + num_speculative_tokens pages per state group (MambaSpec.max_memory_usage_bytes)."""
    p = plan(qwen36(5.98, enable_prefix_caching=True, num_speculative_tokens=3))
    assert p.deployment.state_pages == 5
    assert max_concurrency(p, LEN) == pytest.approx(299 / (63 + 3 * 5))


def test_qwen36_batch_per_context_counts_the_extra_state_pages() -> None:
    """At 2,048 tokens a request holds 1 attention block + 3 state groups: 4 blocks off, 7
    with prefix caching (align) on; 299 blocks hold 74 / 42 such requests."""
    off, on = plan(qwen36(5.98)), plan(qwen36(5.98, enable_prefix_caching=True))
    assert on.seq_bytes(2048) - off.seq_bytes(2048) == 3 * BLOCK_BYTES
    assert (off.seq_bytes(2048), on.seq_bytes(2048)) == (4 * BLOCK_BYTES, 7 * BLOCK_BYTES)
    assert (max_batch(off, 2048), max_batch(on, 2048)) == (74, 42)
    assert max_concurrency(off, 2048) == pytest.approx(299 / 4)
    assert max_concurrency(on, 2048) == pytest.approx(299 / 7)


def test_dense_model_pages_do_not_change() -> None:
    """Llama-3.1-8B (no state layers): prefix caching reuses blocks of the same pool, so the
    pool and the concurrency are the same on and off. 40 GiB / (16 x 131,072 B) = 20,480
    blocks; 8,192 tokens = 512 blocks a request: 40x."""
    spec = load(LLAMA8)
    base = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.24.0", kv_memory=40 * GiB)
    assert base.prefix_caching is True  # V1's default for a decoder-only model
    for switch in (None, True, False):
        p = plan(base.with_(enable_prefix_caching=switch))
        assert p.hybrid is None and p.num_blocks == 20_480
        assert max_concurrency(p, 8192) == pytest.approx(40.0)
        assert p.seq_bytes(8192) == 8192 * 131_072


def test_release_defaults_and_modes_by_release() -> None:
    """The default and the mode per release, each from its source (kvplan.core.prefix_cache)."""
    gdn, dense = load(QWEN36), load(LLAMA8)
    mamba2 = load("ibm-granite/granite-4.0-h-350m")  # Mamba-2 + attention hybrid

    def default(release: str, spec) -> bool | None:
        return default_prefix_caching(Engine.VLLM, profile_for(Engine.VLLM, release), release, spec)

    def mode(release: str, spec) -> MambaCacheMode:
        return mamba_cache_mode(profile_for(Engine.VLLM, release), release, spec, True)

    assert default("0.6.4", dense) is False  # V0
    assert default("0.19.0", dense) is True
    assert [default(r, gdn) for r in ("0.19.0", "0.27.1", "0.28.0", "0.33.0")] == [
        False,
        False,
        True,
        True,
    ]
    assert mode("0.11.0", gdn) is MambaCacheMode.NONE  # forced off
    assert mode("0.12.0", gdn) is MambaCacheMode.NONE  # no GDN support: turned off
    assert mode("0.12.0", mamba2) is MambaCacheMode.ALL
    assert mode("0.15.0", gdn) is MambaCacheMode.ALIGN
    assert mode("0.24.0", mamba2) is MambaCacheMode.ALL
    assert mode("0.28.0", mamba2) is MambaCacheMode.ALIGN
    # 0.32.0: a Mamba-2 layer keeps its prefill checkpoint too: 2 + 1 pages
    d = Deployment(spec=mamba2, gpu=gpu("h100-sxm"), engine_version="0.32.0")
    assert d.prefix_caching is True and d.state_pages == 3
    assert d.with_(engine_version="0.30.0").state_pages == 2
    assert default_prefix_caching(Engine.SGLANG, profile_for(Engine.SGLANG, None), None, gdn)


# ---- vLLM 0.33.0: the Gated DeltaNet prefill checkpoint where FlashInfer's GDN prefill runs --
# 0.33.0 wheel, qwen_gdn_linear_attn.py:148-266 (FlashInfer on compute capability 9.0, or
# 10.x / 12.x with linear_key_head_dim 128 and CUDA >= 13; the PyPI wheel is CUDA 13), :690-703
# and :739-752 (align mode: checkpoint alignment 64, one more state page), platforms/
# interface.py:1089-1095 (the block a multiple of lcm(16, 64)). Qwen3.6-35B-A3B: key head
# dim 128; its 2096-token state page rounds up to 33 x 64 = 2112 tokens, a block of 10 pages
# of 2112 x 1,024 B = 21,626,880 B: 5.98 GiB (6,420,976,107 B) hold 296 blocks. A request of
# 131,072 tokens: cdiv(131,072, 2112) = 63 attention blocks + 3 state groups x 3 pages = 72.
GDN_BLOCK_BYTES = 10 * 2112 * 1024


@pytest.mark.parametrize("name", ["rtx-5090", "h100-sxm", "h200", "b200", "gb300", "gb10"])
def test_vllm_033_gdn_checkpoint_page_where_flashinfer_gdn_runs(name: str) -> None:
    p = plan(qwen36(5.98, engine_version="0.33.0", gpu=gpu(name)))
    d = p.deployment
    assert d.mamba_cache_mode is MambaCacheMode.ALIGN and d.state_pages == 3
    assert p.hybrid is not None and p.hybrid.block_size == 2112
    assert p.hybrid.bytes_per_block == GDN_BLOCK_BYTES == 21_626_880
    assert p.num_blocks == 6_420_976_107 // GDN_BLOCK_BYTES == 296
    assert max_concurrency(p, LEN) == pytest.approx(296 / (63 + 3 * 3))
    # one request of LEN tokens holds 63 attention blocks + 3 groups x 3 state pages
    assert p.seq_bytes(LEN) == (63 + 3 * 3) * GDN_BLOCK_BYTES
    assert any("Gated DeltaNet prefill checkpoint" in n for n in p.notes)
    # the note names the capability; CUDA 13 matters only off Hopper (the kernel's guard)
    cc = d.gpu.compute_capability
    cuda = "" if cc == "9.0" else ", CUDA 13 assumed (the PyPI wheel's)"
    assert (
        "prefix caching on (Mamba cache mode align): 3 state page(s) per request per state "
        "group (incl. vLLM 0.33's Gated DeltaNet prefill checkpoint: FlashInfer's GDN "
        f"prefill runs on compute capability {cc}{cuda}; blocks aligned to 64 tokens)"
    ) in p.notes
    assert {"h100-sxm": "9.0", "h200": "9.0", "b200": "10.0"}.get(name, cc) == cc


@pytest.mark.parametrize("name", ["a100-80gb", "l40s", "rtx-4090", "mi300x"])
def test_vllm_033_no_gdn_checkpoint_without_flashinfer_gdn(name: str) -> None:
    # Ampere / Ada (8.x): Triton; AMD: AITER FlyDSL or Triton. 2 pages, 2096-token blocks
    p = plan(qwen36(5.98, engine_version="0.33.0", gpu=gpu(name)))
    assert p.deployment.state_pages == 2
    assert p.hybrid is not None and p.hybrid.block_size == 2096
    assert p.num_blocks == 299 and max_concurrency(p, LEN) == pytest.approx(299 / 69)


def test_vllm_032_has_no_gdn_checkpoint_on_hopper() -> None:
    p = plan(qwen36(5.98, engine_version="0.32.0", gpu=gpu("h100-sxm")))
    assert p.deployment.state_pages == 2 and p.hybrid is not None
    assert p.hybrid.block_size == 2096


def test_vllm_033_gdn_checkpoint_unknown_without_compute_capability() -> None:
    # a --gpu-file GPU that states no compute capability: not counted, and said
    mine = gpu("rtx-5090").model_copy(update={"name": "my-card", "compute_capability": None})
    p = plan(qwen36(5.98, engine_version="0.33.0", gpu=mine))
    assert p.deployment.state_pages == 2 and p.hybrid is not None
    assert p.hybrid.block_size == 2096
    assert any("states no compute_capability, so not counted" in n for n in p.notes)


def test_vllm_033_gdn_checkpoint_needs_key_head_dim_128_on_blackwell() -> None:
    # the same model with 64-wide GDN keys: FlashInfer on Hopper only (Blackwell: Triton)
    from kvplan.core.prefix_cache import flashinfer_gdn_prefill

    spec = load(QWEN36)
    narrow = spec.model_copy(
        update={
            "layers": tuple(
                layer.model_copy(
                    update={"recurrent": layer.recurrent.model_copy(update={"key_head_dim": 64})}
                )
                if layer.recurrent is not None
                else layer
                for layer in spec.layers
            )
        }
    )
    assert flashinfer_gdn_prefill(gpu("b200"), spec) is True
    assert flashinfer_gdn_prefill(gpu("b200"), narrow) is False
    assert flashinfer_gdn_prefill(gpu("rtx-5090"), narrow) is False
    assert flashinfer_gdn_prefill(gpu("h100-sxm"), narrow) is True


# ---- the one setting: CLI flag pair, policy key, API keyword, launch line ----------------
QWEN36_FLAGS = (
    "fit",
    QWEN36,
    "--gpu",
    "rtx-5090",
    "--engine-version",
    "0.24.0",
    "--kv-dtype",
    "fp8",
    "--max-model-len",
    "131072",
    "--max-num-seqs",
    "1",
    "--max-num-batched-tokens",
    "8192",
    "--kv-memory",
    "5.98GiB",
    "--json",
)


def test_cli_flag_pair_json_and_launch_line() -> None:
    on = run_cli(*QWEN36_FLAGS, "--enable-prefix-caching")
    assert on.code == 0, on.err
    j = json.loads(on.out)
    assert (j["prefix_caching"], j["mamba_cache_mode"], j["state_pages_per_request"]) == (
        True,
        "align",
        2,
    )
    assert j["kv_blocks"] == 299
    assert any("GPU KV cache size: 567,978 tokens" in line for line in j["engine_log"])
    assert j["launch_command"].endswith("--enable-prefix-caching")  # differs from 0.24's default
    default = json.loads(run_cli(*QWEN36_FLAGS).out)
    assert (default["prefix_caching"], default["state_pages_per_request"]) == (False, 1)
    assert "prefix-caching" not in default["launch_command"]
    off = json.loads(run_cli(*QWEN36_FLAGS, "--no-enable-prefix-caching").out)
    assert off["kv_blocks"] == 299 and off["state_pages_per_request"] == 1
    assert "prefix-caching" not in off["launch_command"]  # the release's default: not written


def test_cli_off_on_a_dense_model_and_sglang_spellings() -> None:
    base = ("fit", LLAMA8, "--gpu", "h100-sxm", "--kv-memory", "40GiB", "--json")
    vllm = json.loads(run_cli(*base, "--no-enable-prefix-caching").out)
    assert vllm["prefix_caching"] is False and vllm["mamba_cache_mode"] is None
    assert vllm["launch_command"].endswith("--no-enable-prefix-caching")
    sgl = json.loads(run_cli(*base, "--engine", "sglang", "--no-enable-prefix-caching").out)
    assert "--disable-radix-cache" in sgl["launch_command"]
    sgl_on = json.loads(run_cli(*base, "--engine", "sglang", "--enable-prefix-caching").out)
    assert "radix" not in sgl_on["launch_command"]  # on is SGLang's default
    # TensorRT-LLM: KV block reuse is a YAML setting, said under the command
    trt = json.loads(run_cli(*base, "--engine", "trtllm", "--no-enable-prefix-caching").out)
    assert trt["prefix_caching"] is False
    assert any("kv_cache_config.enable_block_reuse: false" in w for w in trt["warnings"])


def test_api_keyword() -> None:
    from kvplan import api

    report = api.fit(
        QWEN36,
        gpu="rtx-5090",
        engine_version="0.24.0",
        kv_dtype="fp8",
        max_model_len=LEN,
        max_num_seqs=1,
        max_num_batched_tokens=8192,
        kv_memory="5.98GiB",
        enable_prefix_caching=True,
    )
    assert report.prefix_caching is True and report.state_pages_per_request == 2
    assert report.kv_blocks == 299


def _policy(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "kvplan.yaml"
    path.write_text(
        "targets:\n"
        "  - name: q\n"
        f"    model: {QWEN36}\n"
        "    gpu: rtx-5090\n"
        "    engine_version: 0.24.0\n"
        "    kv_dtype: fp8\n"
        "    max_model_len: 131072\n"
        "    max_num_batched_tokens: 8192\n"
        "    kv_memory: 5.98GiB\n"
        "    ctx: 2048\n"
        f"{extra}"
        "    requirements:\n"
        "      min_batch: 43\n"
    )
    return path


def test_policy_key(tmp_path: Path) -> None:
    """min_batch at 2,048 tokens, on the blocks vLLM counts for a request of that length
    (Plan.seq_bytes = HybridLayout.bytes_per_request): 1 attention block of 2,096 tokens + 3
    state groups x 1 page = 4 blocks of 21,463,040 B without prefix caching: 299 blocks hold
    floor(299 / 4) = 74 (vLLM's concurrency arithmetic; kvplan said 75 before, counting
    2,048 tokens x 1,024 B x 10 layers + 30 unpadded GDN states = 85,360,640 B); with it,
    3 more state pages: 7 blocks, floor(299 / 7) = 42."""

    def measured(extra: str) -> tuple[int, int]:
        path = _policy(tmp_path, extra)
        r = run_cli("check", "--policy", str(path), "--format", "json")
        doc = json.loads(r.out)
        row = doc["policies"][0]["targets"][0]["results"][0]
        return r.code, row["measured"]

    assert int(5.98 * GiB) // BLOCK_BYTES == 299
    assert int(5.98 * GiB) // (4 * BLOCK_BYTES) == 299 // 4 == 74
    assert int(5.98 * GiB) // (7 * BLOCK_BYTES) == 299 // 7 == 42
    assert measured("    enable_prefix_caching: true\n") == (1, 42)
    assert measured("    enable_prefix_caching: false\n") == (0, 74)
    assert measured("") == (0, 74)  # 0.24.0's default for a hybrid: off
    bad = run_cli("check", "--policy", str(_policy(tmp_path, "    enable_prefix_caching: 1\n")))
    assert bad.code == 2 and "enable_prefix_caching" in bad.out + bad.err


# ---- values an engine refuses ----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        # vLLM V0 refuses prefix caching with a sliding window (0.6.4.post1 config.py:770)
        (
            ("mistralai/Mistral-7B-v0.1", "--gpu", "h100-sxm", "--engine-version", "0.6"),
            "Prefix caching is not supported with sliding window",
        ),
        # vLLM 0.15-0.27 runs a Mamba-2 hybrid in "all" mode: not modelled, said so
        (
            ("ibm-granite/granite-4.0-h-350m", "--gpu", "h100-sxm", "--engine-version", "0.24.0"),
            "--mamba-cache-mode all",
        ),
        # no engine, no prefix cache
        ((LLAMA8, "--gpu", "h100-sxm", "--engine", "none"), "the engine is none"),
    ],
)
def test_refused_values_exit_2_naming_the_setting(args: tuple[str, ...], message: str) -> None:
    r = run_cli("fit", *args, "--enable-prefix-caching", "--json")
    assert r.code == 2, r.out + r.err
    err = json.loads(r.out)["error"]
    assert err["setting"] == "enable_prefix_caching"
    assert message in err["message"]
    assert err["message"].startswith("--enable-prefix-caching with ")


def test_sglang_hybrid_without_radix_cache_is_refused() -> None:
    """SGLang sizes a hybrid's Mamba pool by max_running_requests with the radix cache off
    (not modelled): an error naming the setting, in the flag's own spelling."""
    r = run_cli(
        "fit",
        QWEN36,
        "--gpu",
        "h100-sxm",
        "--engine",
        "sglang",
        "--no-enable-prefix-caching",
        "--json",
    )
    assert r.code == 2, r.out + r.err
    err = json.loads(r.out)["error"]
    assert err["setting"] == "enable_prefix_caching"
    assert err["message"].startswith("--no-enable-prefix-caching with SGLang")
    assert "max_running_requests" in err["message"]
