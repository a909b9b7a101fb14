"""Read a model from the Hugging Face Hub: its config, and its exact weight bytes.

Everything goes through `huggingface_hub`, so its rules hold unchanged: HF_ENDPOINT,
HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN or the saved login, its retries and
timeouts (HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT), and its fall-back to the cache
when the network is down. On top, one overall deadline (KVPLAN_HUB_DEADLINE seconds,
default 15) bounds the whole look-up, retries included: an endpoint that accepts and never
answers, or refuses and is retried with back-off, ends in one error line naming what was
tried, never in minutes of waiting. It is imported inside functions only, so local and catalog
answers never pay for it. Only JSON is read: no remote code runs, no weights download.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from math import ceil
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from kvplan import __version__
from kvplan.errors import HubError, KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.parse import parse_config_text
from kvplan.sources.resolve import (
    CONFIG_FILES,
    MAX_CONFIG_BYTES,
    ExactWeights,
    ResolvedModel,
    read_config_bytes,
)
from kvplan.sources.validate import HUB_DEADLINE_ENV, env_seconds, hub_deadline, printable

T = TypeVar("T")

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
ASSETS_SCHEMA = 1

# Bits per stored element of each safetensors dtype (sub-byte ones are packed).
SAFETENSORS_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "U16": 16,
    "I16": 16,
    "F16": 16,
    "BF16": 16,
    "U32": 32,
    "I32": 32,
    "F32": 32,
    "U64": 64,
    "I64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

LOCAL_HINT = "or pass a local config.json, or a snapshot folder"


def fetch_model(name: str, *, revision: str | None, token: str | None) -> ResolvedModel:
    """MODEL from the Hub (or huggingface_hub's cache of it), with exact weights when possible.

    `token=None` lets huggingface_hub pick HF_TOKEN or the saved login.
    """
    deadline = hub_deadline()  # before importing huggingface_hub: bad values are one line
    for variable in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        env_seconds(variable, 10, integer=True)
    _quiet_hub()
    repo_id = name.strip()
    started = time.monotonic()
    path = within(
        deadline,
        lambda: _download_config(repo_id, revision=revision, token=token),
        on_timeout=lambda: _late(repo_id, revision, deadline),
    )
    try:
        data = read_config_bytes(path, max_bytes=MAX_CONFIG_BYTES)
    except OSError as exc:
        raise KvplanError(
            f"hub:{repo_id}: cannot read the cached {path.name} ({exc.strerror})"
        ) from None
    spec = parse_config_text(data, name=repo_id, origin=f"hub:{repo_id}")
    commit = path.parent.name if COMMIT_SHA.match(path.parent.name) else revision
    left = max(deadline - (time.monotonic() - started), 0.5)
    exact, note = within(
        left,
        lambda: exact_weights(repo_id, commit=commit, token=token),
        on_timeout=lambda: (
            None,
            "weight bytes estimated from the architecture: the safetensors headers did not "
            f"arrive within the {deadline:g} s Hub deadline ({HUB_DEADLINE_ENV})",
        ),
    )
    assumptions = (*spec.assumptions, note) if note else spec.assumptions
    spec = spec.model_copy(
        update={"assumptions": assumptions, "source": f"hub ({repo_id}@{commit or 'main'})"}
    )
    return ResolvedModel(
        spec=spec, source="hub", location=repo_id, revision=commit, exact_weights=exact
    )


def within(seconds: float, work: Callable[[], T], *, on_timeout: Callable[[], T]) -> T:
    """Run `work` with a wall-clock limit: huggingface_hub has per-request timeouts and
    retries with back-off, but no overall deadline. The work runs in a daemon thread (a
    blocked socket cannot be interrupted); past the deadline `on_timeout` answers, or
    raises, and the thread is abandoned (it cannot keep the process alive)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="kvplan-hub", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return on_timeout()
    if "error" in box:
        raise box["error"]
    return cast(T, box["value"])


def _late(repo_id: str, revision: str | None, deadline: float) -> NoReturn:
    from huggingface_hub import constants

    rev = revision or "main"
    raise HubError(
        f"{repo_id}: no answer from the Hub within the {deadline:g} s deadline "
        f"({HUB_DEADLINE_ENV}); tried {constants.ENDPOINT}/{repo_id}/resolve/{rev}/config.json",
        hint=f"check the network and HF_ENDPOINT, raise {HUB_DEADLINE_ENV}, {LOCAL_HINT}",
    )


def _quiet_hub() -> None:
    """One result on stdout, one error line on stderr: no progress bars for kilobyte files and
    no retry chatter. HF_HUB_DISABLE_PROGRESS_BARS and HF_HUB_VERBOSITY, when set, still win."""
    from huggingface_hub import logging
    from huggingface_hub.utils import disable_progress_bars  # type: ignore[attr-defined]

    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is None:
        disable_progress_bars()
    if not os.environ.get("HF_HUB_VERBOSITY"):
        logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _download_config(repo_id: str, *, revision: str | None, token: str | None) -> Path:
    """config.json, else Meta's / Mistral's params.json, through huggingface_hub's cache."""
    from huggingface_hub import _CACHED_NO_EXIST, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise hub_error(exc, repo_id, revision=revision) from None
    order = CONFIG_FILES
    if try_to_load_from_cache(repo_id, CONFIG_FILES[0], revision=revision) is _CACHED_NO_EXIST:
        # The cache knows this revision has no config.json (a params.json repo): ask for
        # params.json first, so an offline run does not wait out retries for a known absence.
        order = CONFIG_FILES[::-1]
    unreachable: Exception | None = None
    for filename in order:
        try:
            return Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    token=token,
                    # The Hub could not be reached for config.json: look for params.json in the
                    # cache only, rather than wait through the same retries again.
                    local_files_only=unreachable is not None,
                    library_name="kvplan",
                    library_version=__version__,
                )
            )
        except LocalEntryNotFoundError as exc:  # before EntryNotFoundError: it is a subclass
            unreachable = unreachable or exc
        except EntryNotFoundError:  # the repo exists and lacks this file
            continue
        except Exception as exc:
            raise hub_error(exc, repo_id, revision=revision) from None
    if unreachable is not None:
        raise hub_error(unreachable, repo_id, revision=revision) from None
    at = f" at revision {revision!r}" if revision else ""
    raise KvplanError(
        f"{repo_id}: the repo has neither config.json nor params.json{at}",
        hint="kvplan reads only those; pass a local config.json instead",
    )


def hub_error(exc: BaseException, repo_id: str, *, revision: str | None) -> KvplanError:
    """One actionable line for whatever huggingface_hub raised."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        refused = _status(exc) == 403
        return KvplanError(
            f"{repo_id} is gated: accept the license at {endpoint}/{repo_id} and set HF_TOKEN "
            "(or pass --token)",
            hint="the token sent has no access yet" if refused else None,
        )
    if isinstance(exc, RevisionNotFoundError):
        return KvplanError(
            f"{repo_id}: no revision {revision or 'main'!r} on the Hub",
            hint="pass a branch, tag or commit that exists",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return KvplanError(
            f"{repo_id}: no such model on the Hub; if it is private, set HF_TOKEN "
            "(or pass --token)",
            hint=_suggest(repo_id),
        )
    if isinstance(exc, HFValidationError):
        return KvplanError(
            f"{repo_id!r} is not a local file, not in the bundled catalog, and not "
            "a valid Hub repo id (owner/name)",
            hint=_suggest(repo_id),
        )
    if isinstance(exc, LocalEntryNotFoundError):
        cache = constants.HF_HUB_CACHE
        causes = list(_chain(exc))
        if constants.HF_HUB_OFFLINE or any(isinstance(c, OfflineModeIsEnabled) for c in causes):
            return KvplanError(
                f"{repo_id}: not in the Hugging Face cache ({cache}) and "
                "HF_HUB_OFFLINE=1 forbids downloading it",
                hint=f"unset HF_HUB_OFFLINE to download it, {LOCAL_HINT}",
            )
        http = next((c for c in causes if isinstance(c, HfHubHTTPError)), None)
        if http is not None and ((_status(http) or 0) >= 500 or _status(http) in (408, 429)):
            return KvplanError(
                f"{repo_id}: the Hub at {endpoint} answered HTTP {_status(http)} "
                "(after retries) and the config is not cached",
                hint=f"try again later, {LOCAL_HINT}",
            )
        if any(_named(c, "Timeout") for c in causes):
            return KvplanError(
                f"{repo_id}: the Hub at {endpoint} did not answer in time "
                "(after retries) and the config is not cached",
                hint=f"try again, raise HF_HUB_ETAG_TIMEOUT, {LOCAL_HINT}",
            )
        if any(_named(c, "Connect", "Network", "Proxy") for c in causes):
            return KvplanError(
                f"{repo_id}: cannot reach the Hub at {endpoint} (no network?) and "
                f"the config is not in the Hugging Face cache ({cache})",
                hint=f"check the connection and HF_ENDPOINT, {LOCAL_HINT}",
            )
        return KvplanError(f"{repo_id}: {_first_line(causes[-1])}", hint=LOCAL_HINT)
    if isinstance(exc, HfHubHTTPError):
        status = _status(exc)
        if status == 401:
            return KvplanError(
                f"{repo_id}: the Hub rejected the token (HTTP 401)",
                hint="check HF_TOKEN / --token, or log in again",
            )
        return KvplanError(f"{repo_id}: the Hub answered HTTP {status}: {_server_message(exc)}")
    if isinstance(exc, OSError):
        return KvplanError(
            f"{repo_id}: cannot use the Hugging Face cache at "
            f"{constants.HF_HUB_CACHE}: {exc.strerror or _first_line(exc)}"
        )
    return KvplanError(f"{repo_id}: {type(exc).__name__}: {_first_line(exc)}")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _server_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    return headers.get("X-Error-Message") or _first_line(exc)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first (huggingface_hub wraps the real one)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _named(exc: BaseException, *parts: str) -> bool:
    """Classify by class name, so httpx, httpx2 and requests transports all match."""
    return any(part in cls.__name__ for cls in type(exc).__mro__ for part in parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _suggest(name: str) -> str:
    suggestions = load_catalog().suggest(name)
    if suggestions:
        return f"did you mean {', '.join(suggestions)}?"
    return "see `kvplan models` for the bundled catalog, or pass a path to a config.json"


# --- exact weight bytes from safetensors headers -------------------------------------------


def exact_weights(
    repo_id: str, *, commit: str | None, token: str | None
) -> tuple[ExactWeights | None, str | None]:
    """Exact checkpoint bytes from the safetensors headers (no weights are downloaded), else
    None and a note why the architecture estimate stands. Never raises: exact is a bonus.

    Answers are kept per commit in huggingface_hub's assets cache (a commit never changes),
    so a second run gives the same figure offline.
    """
    cache_file = _assets_file(repo_id, commit)
    cached = _read_assets(cache_file)
    if cached is not None:
        return cached
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

    why = "weight bytes estimated from the architecture"
    if constants.HF_HUB_OFFLINE:
        return (
            None,
            f"{why}: HF_HUB_OFFLINE=1 and this revision's safetensors headers are not cached",
        )
    result: tuple[ExactWeights | None, str | None]
    try:
        meta = HfApi(library_name="kvplan", library_version=__version__).get_safetensors_metadata(
            repo_id, revision=commit, token=token
        )
    except NotASafetensorsRepoError:
        result = None, f"{why}: the repo has no model.safetensors or model.safetensors.index.json"
    except SafetensorsParsingError as exc:
        result = None, f"{why}: its safetensors header did not parse ({_first_line(exc)})"
    except Exception as exc:  # network trouble: not remembered, the next run tries again
        return None, f"{why}: could not read the safetensors headers ({_first_line(exc)})"
    else:
        try:
            result = (
                summarize_safetensors(
                    (t.dtype, _elements(t.shape, t.parameter_count), t.data_offsets)
                    for f in meta.files_metadata.values()
                    for t in f.tensors.values()
                ),
                None,
            )
        except (TypeError, ValueError) as exc:
            result = None, f"{why}: its safetensors header did not parse ({exc})"
    _write_assets(cache_file, result)
    return result


MAX_TENSOR_ELEMENTS = 1 << 48  # one tensor: far beyond any checkpoint (the largest ~1e11)
MAX_CHECKPOINT_BYTES = 1 << 53  # 8 PiB: far beyond any checkpoint (the largest ~2e12 bytes)


def _elements(shape: Any, count: Any) -> int:
    """The element count of a tensor, refused (ValueError) when a dimension is negative
    or not an integer: huggingface_hub multiplies the dimensions as given."""
    dims = list(shape) if isinstance(shape, (list, tuple)) else None
    if dims is None or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise ValueError(f"a tensor shape is not a list of integers: {printable(repr(shape))}")
    if any(d < 0 for d in dims):
        raise ValueError(f"a tensor has a negative dimension: {dims}")
    return int(count)


def summarize_safetensors(tensors: Iterable[tuple[str, int, tuple[int, int]]]) -> ExactWeights:
    """Sum (dtype, elements, data_offsets) triples: bytes = elements x dtype size, rounded up
    per tensor for packed sub-byte dtypes; an unknown dtype counts its stored span.

    Every figure is checked (ValueError): elements and offsets non-negative integers,
    offsets ordered, the total plausible, so a corrupt header never yields a negative or
    absurd weight size."""
    total = 0
    by_dtype: dict[str, int] = {}
    for dtype, count, offsets in tensors:
        start, end = _offsets(offsets)
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"element count {count!r} is not an integer")
        if not 0 <= count <= MAX_TENSOR_ELEMENTS:
            raise ValueError(f"element count {count:,} is negative or absurd")
        bits = SAFETENSORS_BITS.get(dtype)
        total += ceil(count * bits / 8) if bits is not None else end - start
        if total > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"the tensors add up to more than {MAX_CHECKPOINT_BYTES:,} bytes")
        by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    return ExactWeights(
        total_bytes=total,
        parameters_by_dtype=dict(sorted(by_dtype.items())),
        total_parameters=sum(by_dtype.values()),
    )


def _offsets(offsets: Any) -> tuple[int, int]:
    pair = tuple(offsets) if isinstance(offsets, (list, tuple)) else ()
    if len(pair) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair):
        raise ValueError(f"data_offsets {printable(repr(offsets))} is not two integers")
    start, end = pair
    if not 0 <= start <= end:
        raise ValueError(f"data_offsets [{start}, {end}] are negative or out of order")
    return start, end


def _assets_file(repo_id: str, commit: str | None) -> Path | None:
    if commit is None or not COMMIT_SHA.match(commit):
        return None  # a branch moves: only commits are safe to remember
    from huggingface_hub import cached_assets_path

    try:
        folder = cached_assets_path(
            library_name="kvplan", namespace=repo_id, subfolder="safetensors"
        )
    except (OSError, ValueError):
        return None
    return folder / f"{commit}.json"


def _read_assets(path: Path | None) -> tuple[ExactWeights | None, str | None] | None:
    if path is None or not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("schema") != ASSETS_SCHEMA:
            return None
        exact = raw.get("exact")
        return (ExactWeights(**exact) if exact is not None else None, raw.get("note"))
    except (OSError, ValueError, AttributeError, TypeError):
        return None  # unreadable cache: ask the Hub again


def _write_assets(path: Path | None, result: tuple[ExactWeights | None, str | None]) -> None:
    if path is None:
        return
    exact, note = result
    payload = {
        "schema": ASSETS_SCHEMA,
        "note": note,
        "exact": exact.model_dump() if exact is not None else None,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only cache only costs a re-fetch next time
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
