"""Resolve the MODEL argument: a local file or folder, then the bundled catalog, then the Hub."""

from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path
from typing import Literal

from kvplan.core.frozen import FieldError, Frozen, field
from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog, unverified_note
from kvplan.sources.parse import parse_config_dict
from kvplan.sources.validate import load_json, printable

CONFIG_FILES = ("config.json", "params.json")
MAX_CONFIG_BYTES = 10_000_000

SourceKind = Literal["file", "catalog", "hub", "design"]


class ExactWeights(Frozen):
    """Weight bytes read from a checkpoint's safetensors headers, not estimated.

    `parameters_by_dtype` counts stored elements, so packed formats (AWQ/GPTQ int4 in I32,
    mxfp4 in U8) show storage elements, not logical parameters; `total_bytes` is exact.
    """

    total_bytes: int = field(ge=0, le=1 << 53)
    parameters_by_dtype: dict[str, int]
    total_parameters: int = field(ge=0)

    def _check(self) -> None:  # also guards the Hub cache file this is read back from
        for name in ("total_bytes", "total_parameters"):
            if not _is_int(getattr(self, name)):
                raise FieldError((name,), "Input should be a valid integer")
        if not isinstance(self.parameters_by_dtype, dict):
            raise FieldError(("parameters_by_dtype",), "Input should be a valid dictionary")
        for dtype, n in self.parameters_by_dtype.items():
            if not isinstance(dtype, str) or not _is_int(n) or n < 0:
                raise FieldError(("parameters_by_dtype", str(dtype)), "invalid element count")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ResolvedModel(Frozen):
    spec: ModelSpec
    source: SourceKind
    location: str  # path, catalog entry, or Hub repo id
    revision: str | None = None  # Hub: the resolved commit sha (else the one asked for)
    exact_weights: ExactWeights | None = None  # Hub checkpoints with safetensors headers
    # One line the reader should see about where the config came from (a catalog entry not
    # re-verified against the published config: kvplan.sources.catalog.unverified_note)
    note: str | None = None


def read_local(path: Path) -> ModelSpec:
    """Read a config.json / params.json file, or a folder holding one."""
    shown = printable(str(path))
    try:
        if path.is_dir():
            for name in CONFIG_FILES:
                if (path / name).is_file():
                    return read_local(path / name)
            raise KvplanError(f"{shown}: folder has neither config.json nor params.json")
        data = read_config_bytes(path)
    except OSError as exc:
        raise KvplanError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    raw = load_json(data, origin=shown)
    return parse_config_dict(raw, name=model_name_for(path, raw), origin=shown)


def read_config_bytes(path: Path, *, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """A config file's bytes: a regular file (never a FIFO, a device such as /dev/zero, or
    a socket, which would block or never end), at most `max_bytes`, read in bounded chunks
    so a file that grows while read cannot exhaust memory."""
    shown = printable(str(path))
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise KvplanError(f"{shown}: not a regular file (a FIFO, device or socket)")
    if info.st_size > max_bytes:
        raise KvplanError(
            f"{shown}: file is {info.st_size:,} bytes, too large for a model config "
            f"(limit {max_bytes:,})"
        )
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise KvplanError(f"{shown}: too large for a model config (limit {max_bytes:,} bytes)")
    return data


def model_name_for(path: Path, raw: object) -> str:
    """A readable name: the config's `_name_or_path`, else the file or folder name."""
    named = raw.get("_name_or_path") if isinstance(raw, dict) else None
    if isinstance(named, str) and named and not named.startswith(("/", ".")):
        return printable(named)
    stem = path.parent.name if path.name in CONFIG_FILES else path.stem
    stem = stem.removesuffix(".params")
    return printable(stem.replace("__", "/") if stem.count("__") == 1 else (stem or str(path)))


def expand_user(text: str) -> Path:
    """`~` and `~user` expanded where that is possible; an unknown user (or no home) leaves
    the text as it is, so the caller reports "no such file" instead of an exception."""
    try:
        return Path(text).expanduser()
    except (RuntimeError, KeyError, ValueError):
        return Path(text)


def local_path(name: str) -> Path | None:
    """MODEL as an existing local path, or None. Never raises for odd text: an unknown
    ~user, a component longer than the file system allows, a NUL byte."""
    try:
        path = Path(name).expanduser()
        return path if path.exists() else None
    except (OSError, RuntimeError, ValueError):
        return None


MAX_GLOB_DIRS = 20_000  # folders one glob may visit: a whole checkout is a few thousand
_MAGIC = frozenset("*?[")


def safe_glob(pattern: str) -> list[Path]:
    """Files matching a glob, `**` included, that always ends: `glob.glob(recursive=True)`
    follows symbolic links to folders, so a link loop makes it run forever. This walks
    real folders only (links to folders are not followed; links to files match), visits at
    most MAX_GLOB_DIRS folders, and refuses rather than answers partially beyond that."""
    if "**" not in pattern:
        return sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
    parts = pattern.split("/")
    fixed = next(i for i, part in enumerate(parts) if _MAGIC & set(part))
    base = "/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else ".")
    roots = [base] if os.path.isdir(base) else []
    rest = _glob_regex("/".join(parts[fixed:]))
    out: list[Path] = []
    visited = 0
    for root in roots:
        for folder, _dirs, files in os.walk(root, followlinks=False):
            visited += 1
            if visited > MAX_GLOB_DIRS:
                raise KvplanError(
                    f"{printable(pattern)}: the glob reaches more than {MAX_GLOB_DIRS:,} folders",
                    hint="narrow it (name the folder the configs are in)",
                )
            for name in files:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if rest.fullmatch(rel) and os.path.isfile(full):
                    out.append(Path(full))
    return sorted(out)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """glob syntax -> regex: `**/` any folders (or none), `*` and `?` within one name."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:[^/]*/)*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def looks_like_path(name: str) -> bool:
    return (
        name.endswith(".json")
        or name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or local_path(name) is not None
    )


def resolve_model(
    name: str, *, revision: str | None = None, token: str | None = None, refresh: bool = False
) -> ResolvedModel:
    """Find MODEL: local path -> bundled catalog -> Hugging Face Hub."""
    if not name.strip():
        raise KvplanError(
            "MODEL is empty (an unset variable?)",
            hint="give a config.json path, a catalog name (`kvplan models`) or a Hub repo id",
        )
    name = strip_hub_url(name)
    path = local_path(name)
    if path is not None:
        return ResolvedModel(spec=read_local(path), source="file", location=printable(str(path)))
    if looks_like_path(name) and not _is_repo_id(name):
        raise KvplanError(f"{printable(name)}: no such file or folder")
    catalog = load_catalog()
    if not refresh and revision is None:
        entry = catalog.find(name)
        if entry is not None:
            return ResolvedModel(
                spec=catalog.load(entry),
                source="catalog",
                location=entry.repo_id,
                note=unverified_note(entry),
            )
    if not refresh:
        near = near_miss(name, [e.repo_id for e in catalog.entries])
        if near is not None:
            raise KvplanError(
                f"{printable(name)}: not in the bundled catalog; did you mean {near}?",
                hint="a typo, not asked of the Hub; pass --refresh to ask the Hub for it anyway",
            )
    return _from_hub(name, revision=revision, token=token)


def near_miss(name: str, known: list[str]) -> str | None:
    """A catalog name that `name` is a typo of: at most two edits apart (case aside) and
    the same digits in the same order, so versions and sizes that differ (Mistral-7B-v0.3
    vs v0.1, phi-1 vs phi-2, Llama-2-7b-chat-hf) are real other models, not typos."""
    key = name.strip().lower()
    digits = re.sub(r"\D", "", key)
    best: tuple[int, str] | None = None
    for candidate in known:
        other = candidate.lower()
        if other == key or re.sub(r"\D", "", other) != digits or abs(len(other) - len(key)) > 2:
            continue
        distance = _edit_distance(key, other, limit=2)
        if distance <= 2 and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def _edit_distance(a: str, b: str, *, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps count one), stopping past `limit`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


HUB_URL_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf://")


def strip_hub_url(name: str) -> str:
    """Accept a pasted Hub URL (https://huggingface.co/org/name[/tree/main]) as a repo id."""
    for prefix in HUB_URL_PREFIXES:
        if name.startswith(prefix):
            parts = name[len(prefix) :].strip("/").split("/")
            return "/".join(parts[:2])
    return name


def _is_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.endswith(".json")


def _from_hub(name: str, *, revision: str | None, token: str | None) -> ResolvedModel:
    from kvplan.sources import hub  # lazy: huggingface_hub costs start-up time

    return hub.fetch_model(name, revision=revision, token=token)
