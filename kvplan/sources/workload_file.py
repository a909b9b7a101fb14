"""What `kvplan plan` reads: workload files, named shapes, prices, rates and durations.

  length files  CSV (a header naming the input and output columns, or two bare columns)
                or JSON lines (one object per line with the two keys); column / key names
                accepted: INPUT_KEYS and OUTPUT_KEYS (the Azure 2023 trace's ContextTokens /
                GeneratedTokens and Mooncake's input_length / output_length included).
  named shapes  configs/workloads.yaml, by id or alias (chat, code, rag, reasoning, ...).
                A published trace gives statistics, not its rows: the shape is one request
                at the trace's mean input and mean output (docs/plan.md: what this hides).
  prices        configs/gpu_prices.yaml (dated, sourced) or a user file of the same schema.
Every problem is one KvplanError line (exit 2), naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from pathlib import Path
from typing import Any

from kvplan.core.serving import Price
from kvplan.core.workload import Workload, workload
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_bundled_yaml, load_yaml_file

INPUT_KEYS = (
    "input_len",
    "input_length",
    "input_tokens",
    "input",
    "prompt_tokens",
    "prompt_len",
    "contexttokens",
)
OUTPUT_KEYS = (
    "output_len",
    "output_length",
    "output_tokens",
    "output",
    "completion_tokens",
    "generated_tokens",
    "generatedtokens",
)
MAX_FILE_BYTES = 200_000_000
RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hr": 3600.0}
DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}


def _positive_int(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool):
        raise KvplanError(f"{where}: {what} must be a positive integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise KvplanError(f"{where}: {what} must be a positive integer, got {value!r}") from None
    if number != int(number) or number <= 0:
        raise KvplanError(f"{where}: {what} must be a positive integer, got {value!r}")
    return int(number)


def _column(names: list[str], keys: tuple[str, ...]) -> int | None:
    lowered = [n.strip().lower() for n in names]
    for key in keys:
        if key in lowered:
            return lowered.index(key)
    return None


def read_lengths(path: str, *, prefix_len: int = 0) -> Workload:
    """(input, output) pairs from a CSV or JSON-lines file."""
    file = Path(path)
    if not file.is_file():
        raise KvplanError(f"workload file {path} not found", setting="workload")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise KvplanError(f"workload file {path} is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KvplanError(f"workload file {path} is not UTF-8 text") from None
    if not text.strip():
        raise KvplanError(f"workload file {path} is empty", setting="workload")
    first = next(line for line in text.splitlines() if line.strip()).lstrip()
    pairs = _jsonl(text, path) if first.startswith("{") else _csv(text, path)
    if not pairs:
        raise KvplanError(f"workload file {path} holds no requests", setting="workload")
    return workload(Path(path).name, pairs, source=str(file), prefix_len=prefix_len)


def _jsonl(text: str, path: str) -> list[tuple[int, int]]:
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KvplanError(f"{where}: not a JSON object ({exc.msg})") from None
        if not isinstance(row, dict):
            raise KvplanError(f"{where}: not a JSON object")
        keys = {k.lower(): k for k in row}
        i = next((keys[k] for k in INPUT_KEYS if k in keys), None)
        o = next((keys[k] for k in OUTPUT_KEYS if k in keys), None)
        if i is None or o is None:
            raise KvplanError(
                f"{where}: needs an input and an output length",
                hint=f"keys such as {INPUT_KEYS[0]} and {OUTPUT_KEYS[0]}",
            )
        pairs.append(
            (_positive_int(row[i], where, "input length"), _positive_int(row[o], where, "output"))
        )
    return pairs


def _csv(text: str, path: str) -> list[tuple[int, int]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    header = rows[0]
    i, o = _column(header, INPUT_KEYS), _column(header, OUTPUT_KEYS)
    start = 1
    if i is None or o is None:
        if any(not cell.strip().replace(".", "", 1).isdigit() for cell in header[:2]):
            raise KvplanError(
                f"{path} line 1: no input/output length columns in the header",
                hint=f"name them e.g. {INPUT_KEYS[0]},{OUTPUT_KEYS[0]}",
            )
        i, o, start = 0, 1, 0
    pairs = []
    for n, row in enumerate(rows[start:], start + 1):
        where = f"{path} line {n}"
        if len(row) <= max(i, o):
            raise KvplanError(f"{where}: expected at least {max(i, o) + 1} columns")
        pairs.append(
            (
                _positive_int(row[i].strip(), where, "input length"),
                _positive_int(row[o].strip(), where, "output length"),
            )
        )
    return pairs


# ---- named shapes ---------------------------------------------------------------------------
def _shapes() -> list[dict[str, Any]]:
    data = load_bundled_yaml(configs_dir() / "workloads.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("workloads"), list):
        raise KvplanError("configs/workloads.yaml: no workloads list")
    return [w for w in data["workloads"] if isinstance(w, dict)]


def shape_names() -> list[str]:
    out = []
    for w in _shapes():
        out += [str(a) for a in w.get("aliases") or []]
    return out + [str(w["id"]) for w in _shapes()]


def _length(stats: Any, what: str, name: str) -> float:
    if isinstance(stats, dict):
        for key in ("fixed", "mean"):
            if isinstance(stats.get(key), int | float) and stats[key] > 0:
                return float(stats[key])
    raise KvplanError(f"workload {name!r} states no {what} length kvplan can use")


def named_shape(name: str, *, prefix_len: int = 0) -> Workload:
    """A published shape by id or alias: one request at its mean (or fixed) lengths."""
    key = name.strip().lower()
    for w in _shapes():
        names = [str(w["id"]).lower(), *(str(a).lower() for a in w.get("aliases") or [])]
        if key in names:
            i = _length(w.get("input_tokens"), "input", name)
            o = _length(w.get("output_tokens"), "output", name)
            stat = "fixed" if "fixed" in (w.get("input_tokens") or {}) else "mean"
            return workload(
                str(w["id"]),
                [(max(1, round(i)), max(1, round(o)))],
                source=str(w.get("source")),
                prefix_len=prefix_len,
                notes=(f"{w.get('use_case', w['id'])}: {stat} input {i:g}, output {o:g} tokens",),
            )
    raise KvplanError(
        f"unknown workload {name!r}",
        hint=f"a CSV/JSON-lines file, or one of {', '.join(shape_names())}",
        setting="workload",
    )


def resolve_workload(name: str, *, prefix_len: int = 0) -> Workload:
    """A file path (if it exists or looks like one) or a named shape."""
    looks_like_file = Path(name).is_file() or re.search(r"[./\\]", name) is not None
    if looks_like_file and not any(name.lower() == n.lower() for n in shape_names()):
        return read_lengths(name, prefix_len=prefix_len)
    return named_shape(name, prefix_len=prefix_len)


# ---- rates, durations --------------------------------------------------------------------------
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(/?)\s*([a-z]*)\s*$", re.I)


def parse_rate(text: str) -> float:
    """'5/s', '300/min', '10/h' -> requests per second; a bare number is bad input."""
    m = _NUMBER_UNIT.match(text or "")
    if not m or not m.group(2) or m.group(3).lower() not in RATE_UNITS:
        raise KvplanError(
            f"--rate {text!r} needs a unit", hint="e.g. 5/s, 300/min, 10000/h", setting="rate"
        )
    value = float(m.group(1)) / RATE_UNITS[m.group(3).lower()]
    if value <= 0:
        raise KvplanError(f"--rate must be positive, got {text!r}", setting="rate")
    return value


def parse_duration(text: str, flag: str) -> float:
    """'50ms', '2s' -> seconds; a bare number is bad input."""
    m = _NUMBER_UNIT.match(text or "")
    if not m or m.group(2) or m.group(3).lower() not in DURATION_UNITS:
        raise KvplanError(f"{flag} {text!r} needs a unit", hint="e.g. 50ms, 2s")
    value = float(m.group(1)) * DURATION_UNITS[m.group(3).lower()]
    if value <= 0:
        raise KvplanError(f"{flag} must be positive, got {text!r}")
    return value


# ---- prices ------------------------------------------------------------------------
def parse_price_option(text: str, gpus: list[str]) -> dict[str, Price]:
    """--gpu-hour-cost: '2.49' (every GPU) or 'h100-sxm=2.49,mi300x=1.85'."""
    out: dict[str, Price] = {}
    for part in text.split(","):
        name, _, value = part.rpartition("=")
        try:
            usd = float(value)
        except ValueError:
            raise KvplanError(
                f"--gpu-hour-cost {text!r}: {value!r} is not a number",
                hint="e.g. 2.49 or h100-sxm=2.49,mi300x=1.85",
            ) from None
        if not usd > 0:
            raise KvplanError(f"--gpu-hour-cost must be positive, got {value}")
        price = Price(usd_per_gpu_hour=usd, source="--gpu-hour-cost")
        for gpu in [name.strip()] if name else gpus:
            out[gpu] = price
    return out


def load_prices(path: str | None) -> dict[str, Price]:
    """kvplan GPU name -> price: the median per-GPU-hour figure of its on-demand rows (else
    of all its rows) in configs/gpu_prices.yaml, or in a user file of that schema."""
    file = Path(path) if path and path != "default" else configs_dir() / "gpu_prices.yaml"
    data = load_yaml_file(file)
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise KvplanError(f"{file}: expected a 'prices' list", setting="prices")
    rows: dict[str, list[dict[str, Any]]] = {}
    for n, row in enumerate(data["prices"], 1):
        if not isinstance(row, dict):
            raise KvplanError(f"{file}: price row {n} is not a mapping", setting="prices")
        gpu, usd = row.get("kvplan_gpu"), row.get("usd_per_gpu_hour")
        if gpu is None or usd is None:
            continue
        if isinstance(usd, bool) or not isinstance(usd, int | float) or usd <= 0:
            raise KvplanError(
                f"{file}: price row {row.get('id', n)}: usd_per_gpu_hour must be positive",
                setting="prices",
            )
        rows.setdefault(str(gpu), []).append(row)
    out: dict[str, Price] = {}
    for gpu, found in rows.items():
        chosen = [r for r in found if r.get("pricing") == "on-demand"] or found
        usd = statistics.median(float(r["usd_per_gpu_hour"]) for r in chosen)
        cited = "; ".join(
            f"{r.get('id')} ${r['usd_per_gpu_hour']} ({r.get('date')}, {r.get('source')})"
            for r in chosen
        )
        out[gpu] = Price(usd_per_gpu_hour=usd, source=f"median of {len(chosen)}: {cited}")
    return out
