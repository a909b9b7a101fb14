"""Where the bundled data (`configs/`) lives: inside the wheel or beside a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from kvplan.errors import KvplanError

_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def configs_dir() -> Path:
    for candidate in (_PACKAGE / "_configs", _PACKAGE.parent / "configs"):
        if (candidate / "gpus.yaml").is_file() or (candidate / "models").is_dir():
            return candidate
    raise KvplanError("kvplan's bundled data (configs/) is missing: reinstall kvplan")


def load_yaml_file(path: Path, *, max_bytes: int = 5_000_000) -> object:
    """Safe-load a YAML file (no object construction), with a size limit."""
    import yaml

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise KvplanError(f"{path}: cannot read ({exc.strerror})") from None
    if size > max_bytes:
        raise KvplanError(f"{path}: file is {size:,} bytes, larger than the {max_bytes:,} limit")
    try:
        # libyaml's C loader when built in (same safe constructors, ~10x faster).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KvplanError(f"{path}{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise KvplanError(f"{path}: not a UTF-8 text file") from None
