"""Writing `kvplan sweep` rows: a rich table, CSV, JSON lines or Parquet, chunk by chunk.

Every format carries the same columns (`kvplan.core.sweep.COLUMNS`: the scenario, then the
field names of `fit --json`), one row per (plan, ctx, batch); a float that was not
estimated (decode latency where the weights do not fit) is empty / null. With pyarrow
installed (`pip install 'kvplan[parquet]'`) CSV and JSON lines are formatted by Arrow's
C++ kernels (millions of rows per second); without it by the standard library, which is
the same text, only slower. Parquet needs pyarrow.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from kvplan.core.sweep import COLUMNS, PLAN_COLUMNS, ROW_COLUMNS, SweepResult
from kvplan.errors import KvplanError

if TYPE_CHECKING:
    from rich.console import RenderableType

FORMATS = ("table", "csv", "jsonl", "parquet")
TABLE_ROW_LIMIT = 100_000


def has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


# ---- table -----------------------------------------------------------------------------
def render_table(result: SweepResult) -> RenderableType:
    from rich.table import Table

    from kvplan.units import fmt_gib

    if result.rows > TABLE_ROW_LIMIT:
        raise KvplanError(
            f"{result.rows:,} rows are too many for a table",
            hint="use --format csv, jsonl or parquet with --output FILE",
        )
    t = Table(title=f"Sweep: {result.rows:,} scenarios", title_justify="left")
    heads = ("model", "gpu", "engine", "tp", "pp", "kv", "G", "ctx", "batch", "fits")
    for h in heads:
        t.add_column(h, justify="left" if h in ("model", "gpu", "engine", "kv") else "right")
    for h in ("KV GiB", "budget GiB", "max batch", "max ctx", "decode ms"):
        t.add_column(h, justify="right")
    for shaped in result.chunks():
        chunk = {k: v.ravel() for k, v in shaped.items()}
        for i in range(len(chunk["plan"])):
            p = result.plans[int(chunk["plan"][i])]
            ms = float(chunk["decode_ms"][i])
            t.add_row(
                p.model,
                p.gpu,
                p.engine_label,
                str(p.tp),
                str(p.pp),
                p.kv_dtype,
                str(p.kv_heads),
                f"{int(chunk['ctx'][i]):,}",
                f"{int(chunk['batch'][i]):,}",
                "yes" if chunk["fits"][i] else "no",
                fmt_gib(int(chunk["kv_bytes"][i])),
                fmt_gib(p.kv_budget_bytes),
                f"{int(chunk['max_batch'][i]):,}",
                f"{int(chunk['max_ctx'][i]):,}",
                "-" if math.isnan(ms) else f"{ms:,.2f}",
            )
    return t


# ---- plain rows (the standard-library path) --------------------------------------------
def _python_rows(result: SweepResult, chunk: dict[str, Any]) -> Iterator[dict[str, Any]]:
    plan_values = [[getattr(p, c) for c in PLAN_COLUMNS] for p in result.plans]
    cols = [chunk[c].ravel().tolist() for c in ROW_COLUMNS]
    for i, plan in enumerate(chunk["plan"].ravel().tolist()):
        row = dict(zip(PLAN_COLUMNS, plan_values[plan], strict=True))
        for name, values in zip(ROW_COLUMNS, cols, strict=True):
            v = values[i]
            row[name] = None if isinstance(v, float) and math.isnan(v) else v
        yield row


# ---- Arrow -------------------------------------------------------------------------------
def arrow_table(result: SweepResult, chunk: dict[str, Any]) -> Any:
    """One chunk as a pyarrow Table: plan columns dictionary-encoded (strings) or taken."""
    import numpy as np
    import pyarrow as pa

    idx = pa.array(chunk["plan"].ravel())
    arrays: list[Any] = []
    for c in PLAN_COLUMNS:
        values = result.plan_column(c)
        if any(v is None for v in values):  # text with nulls (Parquet: no null in a dict)
            arrays.append(pa.array(values, pa.string()).take(idx))
        elif isinstance(values[0], str):
            arrays.append(pa.DictionaryArray.from_arrays(idx, pa.array(values, pa.string())))
        else:
            arrays.append(pa.array(np.asarray(values, dtype=np.int64)).take(idx))
    for c in ROW_COLUMNS:
        v = chunk[c].ravel()
        if v.dtype.kind == "f":
            arrays.append(pa.array(v, from_pandas=True))  # NaN -> null
        else:
            arrays.append(pa.array(v))
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))


def _jsonl_arrow(result: SweepResult, chunk: dict[str, Any]) -> bytes:
    """JSON lines formatted by Arrow's kernels: the plan's fields are one JSON prefix per
    plan (taken by index), each row field is cast to text once (shortest round-trip floats,
    true/false, null where absent), and one element-wise join assembles the lines."""
    import pyarrow as pa
    import pyarrow.compute as pc

    prefixes = pa.array(
        [json.dumps({c: getattr(p, c) for c in PLAN_COLUMNS})[:-1] for p in result.plans],
        pa.string(),
    )
    parts: list[Any] = [prefixes.take(pa.array(chunk["plan"].ravel()))]
    for name in ROW_COLUMNS:
        v = chunk[name].ravel()
        arr = pa.array(v, from_pandas=True) if v.dtype.kind == "f" else pa.array(v)
        parts += [f",{json.dumps(name)}:", pc.fill_null(pc.cast(arr, pa.string()), "null")]
    parts.append("}\n")
    return _concat(pc.binary_join_element_wise(*parts, ""))


def _concat(strings: Any) -> bytes:
    """The values of a string array, concatenated, without a Python string per row."""
    import numpy as np

    arr = strings.combine_chunks() if hasattr(strings, "combine_chunks") else strings
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = arr.buffers()[2]
    return bytes(memoryview(data)[offsets[0] : offsets[-1]])


# ---- writers ---------------------------------------------------------------------------
@contextmanager
def _sink(path: str | None) -> Iterator[IO[bytes]]:
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    try:
        f = open(path, "wb")  # noqa: SIM115
    except OSError as exc:
        raise KvplanError(f"--output {path}: cannot write ({exc.strerror})") from None
    with f:
        yield f


def write(
    result: SweepResult,
    fmt: str,
    output: str | None,
    *,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Stream every row of `result` in `fmt` to `output` (None: stdout)."""
    tick = progress or (lambda _n: None)
    arrow = has_pyarrow()
    if fmt == "parquet":
        if not arrow:
            raise KvplanError(
                "--format parquet needs pyarrow", hint="pip install 'kvplan[parquet]'"
            )
        if output is None:
            raise KvplanError("--format parquet needs --output FILE")
        import pyarrow.parquet as pq

        writer = None
        try:
            for chunk in result.chunks():
                table = arrow_table(result, chunk)
                if writer is None:
                    writer = pq.ParquetWriter(output, table.schema)
                writer.write_table(table)
                tick(chunk["plan"].size)
        except OSError as exc:
            raise KvplanError(f"--output {output}: cannot write ({exc})") from None
        finally:
            if writer is not None:
                writer.close()
        return
    if fmt == "jsonl":
        with _sink(output) as f:
            for chunk in result.chunks():
                if arrow:
                    f.write(_jsonl_arrow(result, chunk))
                else:
                    f.write(
                        "".join(
                            json.dumps(row) + "\n" for row in _python_rows(result, chunk)
                        ).encode()
                    )
                tick(chunk["plan"].size)
        return
    if fmt == "csv":
        with _sink(output) as f:
            first = True
            for chunk in result.chunks():
                if arrow:
                    import pyarrow.csv as pcsv

                    pcsv.write_csv(
                        arrow_table(result, chunk),
                        f,
                        write_options=pcsv.WriteOptions(
                            include_header=first, quoting_style="needed"
                        ),
                    )
                else:
                    f.write(_csv_text(result, chunk, header=first).encode())
                first = False
                tick(chunk["plan"].size)
        return
    raise KvplanError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _csv_text(result: SweepResult, chunk: dict[str, Any], *, header: bool) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(COLUMNS)
    for row in _python_rows(result, chunk):
        w.writerow(
            [
                "" if v is None else ("true" if v is True else "false" if v is False else v)
                for v in row.values()
            ]
        )
    return buf.getvalue()
