"""The fuzzing harness's pieces: an in-process CLI runner, hostile-value strategies, and the
one oracle every run must satisfy (issue 13).

The oracle: a run ends in an answer (exit 0 or 1) or in exactly one `Error: ` line on
stderr (exit 2); never a traceback or an "internal error"; under --json stdout is one JSON
object (an error object on exit 2) with no NaN or Infinity and no negative byte count;
without --json no "nan"/"inf" figure is printed; and it finishes within the time limit.

Profiles: the default (CI) profile runs a bounded number of examples per test; set
KVPLAN_FUZZ=long for the on-demand profile (many more examples, and the 1 s limit
enforced per run instead of the CI allowance for slow shared runners). Every case tried is
counted; KVPLAN_FUZZ_REPORT=path writes the counts (JSON) when the session ends.
"""

from __future__ import annotations

import atexit
import io
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "configs" / "models"
LONG = os.environ.get("KVPLAN_FUZZ", "").lower() == "long"
# A run must end within a second (issue 13). CI runners are shared and slow, and an
# in-process run may pay a first import, so CI allows more; the long profile holds the line.
TIME_LIMIT_S = 1.0 if LONG else 5.0

settings.register_profile(
    "fuzz-ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
settings.register_profile(
    "fuzz-long",
    max_examples=int(os.environ.get("KVPLAN_FUZZ_EXAMPLES", "800")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
FUZZ = settings.get_profile("fuzz-long" if LONG else "fuzz-ci")

CASES: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()
SLOWEST: dict[str, float] = {}


def _report() -> None:
    path = os.environ.get("KVPLAN_FUZZ_REPORT")
    if path and CASES:
        Path(path).write_text(
            json.dumps(
                {
                    "profile": "long" if LONG else "ci",
                    "cases": dict(CASES),
                    "total": sum(CASES.values()),
                    "slowest_s": SLOWEST,
                },
                indent=2,
            )
        )


atexit.register(_report)


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str
    seconds: float


def _no_hub(name: str, **_: object) -> Any:
    from kvplan.errors import HubError

    raise HubError(f"{name}: the Hub is not asked in-process (tests/test_hub.py covers it)")


def invoke(args: list[str], env: dict[str, str] | None = None) -> Run:
    """Run `kvplan ARGS` through main() in this process (far faster than a subprocess),
    with stdout/stderr captured. The Hub is never asked (huggingface_hub reads its
    environment once, at import, so importing it here would leak into other tests)."""
    from kvplan.cli import app as cli_app
    from kvplan.sources import resolve

    real_hub = resolve._from_hub
    resolve._from_hub = _no_hub  # type: ignore[assignment]

    saved_env = os.environ.copy()
    saved = sys.argv, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    os.environ.update({"COLUMNS": "120", **(env or {})})
    sys.argv, sys.stdout, sys.stderr = ["kvplan", *args], out, err
    started = time.perf_counter()
    code: Any = 0
    try:
        cli_app.main()
    except SystemExit as exc:
        code = exc.code
    finally:
        seconds = time.perf_counter() - started
        sys.argv, sys.stdout, sys.stderr = saved
        resolve._from_hub = real_hub  # type: ignore[assignment]
        os.environ.clear()
        os.environ.update(saved_env)
    return Run(args, code if isinstance(code, int) else 1, out.getvalue(), err.getvalue(), seconds)


_NON_FINITE = re.compile(r"(?<![\w.])(nan|-?inf|-?infinity)(?![\w])", re.IGNORECASE)
_SIGNED_OK = ("margin", "headroom", "shortfall", "delta", "change", "vs_")


def _no_constant(name: str) -> Any:
    raise AssertionError(f"--json wrote {name}")


def check(run: Run, *, surface: str, as_json: bool) -> Any:
    """The oracle (see the module docstring); returns the parsed JSON, if any."""
    CASES[surface] += 1
    SLOWEST[surface] = max(SLOWEST.get(surface, 0.0), round(run.seconds, 3))
    where = f"kvplan {' '.join(a[:80] for a in run.args)}"
    try:
        assert run.code in (0, 1, 2), f"{where}: exit {run.code}\n{run.err}"
        assert "Traceback" not in run.err, f"{where}: traceback\n{run.err}"
        assert "internal error" not in run.err, f"{where}: {run.err}"
        assert run.seconds <= TIME_LIMIT_S, f"{where}: took {run.seconds:.2f} s"
        if run.code == 2:
            lines = run.err.strip("\n").split("\n")
            assert len(lines) == 1 and lines[0].startswith("Error: "), f"{where}:\n{run.err}"
        parsed = None
        if as_json:
            parsed = json.loads(run.out, parse_constant=_no_constant)
            assert isinstance(parsed, dict), f"{where}: {run.out[:200]}"
            if run.code == 2:
                # One error object; or `check`'s report whose exit 2 says a requirement
                # could not be evaluated (it never passes).
                report = parsed.get("command") == "check" and parsed.get("exit_code") == 2
                assert "error" in parsed or (report and not parsed["passed"]), where
            else:
                _sane_numbers(parsed, where, ())
        elif run.code in (0, 1):
            found = _NON_FINITE.search(run.out)
            assert found is None, f"{where}: prints {found.group()!r}\n{run.out[:2000]}"
        return parsed
    except AssertionError:
        FAILURES[surface] += 1
        raise


def _sane_numbers(value: Any, where: str, path: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _sane_numbers(item, where, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            _sane_numbers(item, where, path)
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where}: {'.'.join(path)} = {value}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and path:
        key = path[-1].lower()
        if ("bytes" in key or key.endswith("_gib")) and not any(s in key for s in _SIGNED_OK):
            assert value >= 0, f"{where}: negative size {'.'.join(path)} = {value}"


# ---- hostile values --------------------------------------------------------------------------
SPECIAL_NUMBERS = [
    0,
    -1,
    1,
    2,
    3,
    7,
    -(2**31),
    2**31,
    2**53 + 1,
    2**63,
    2**64,
    10**7,
    10**12,
    10**30,
    0.5,
    1.5,
    4096.0,
    1e-300,
    1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
]
numbers = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-8, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
)
texts = st.one_of(
    st.sampled_from(
        ["false", "true", "False", "0", "4", "-1", "nan", "inf", "", " ", "auto", "1e400", "null"]
    ),
    st.text(max_size=12),
)
values = st.one_of(
    numbers,
    texts,
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(-3, 80), texts), max_size=6),
    st.dictionaries(st.text(max_size=6), st.one_of(numbers, texts), max_size=3),
)
flag_texts = st.one_of(
    st.sampled_from(
        [
            "0",
            "-1",
            "1",
            "7",
            "13",
            "13B",
            "13e9",
            "1e400",
            "nan",
            "inf",
            "-inf",
            "1048576",
            "99999999999999999999",
            "9" * 5000,
            "40",
            "40GiB",
            "1000TiB",
            "0GiB",
            "0.5",
            "1.0",
            "1.5",
            "",
            " ",
            "0x10",
            "4k",
            "1_000",
        ]
    ),
    st.integers(-(2**65), 2**65).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)


def seed_config(name: str) -> dict[str, Any]:
    return dict(json.loads((MODELS / name).read_text()))


CONFIG_SEEDS = [
    "meta-llama__Llama-2-7b-hf.json",
    "mistralai__Mixtral-8x7B-v0.1.json",
    "Qwen__Qwen2-7B.json",
    "google__gemma-2-9b-it.json",
    "google__gemma-3-1b-it.json",
    "deepseek-ai__DeepSeek-V2-Lite.json",
    "ai21labs__AI21-Jamba-1.5-Mini.json",
    "tiiuae__falcon-7b.json",
    "mosaicml__mpt-7b-instruct.json",
    "Qwen__Qwen3-Next-80B-A3B-Thinking.json",
    "meta-llama__Llama-2-7b.params.json",
    "openai__gpt-oss-20b.json",
    "bigcode__starcoder2-7b.json",
]
FAMILIES = [
    "llama",
    "qwen2",
    "qwen3_moe",
    "mixtral",
    "gemma2",
    "gemma3_text",
    "cohere2",
    "falcon",
    "RefinedWeb",
    "mpt",
    "jamba",
    "qwen3_next",
    "deepseek_v2",
    "gpt_bigcode",
    "llama4_text",
    "nemotron_h",
    "gpt2",
    "gpt_oss",
    "unknown",
]
