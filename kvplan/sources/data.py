"""Where the bundled data (`configs/`) lives: inside the wheel or beside a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from kvplan.errors import KvplanError
from kvplan.sources.validate import printable

_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def configs_dir() -> Path:
    for candidate in (_PACKAGE / "_configs", _PACKAGE.parent / "configs"):
        if (candidate / "gpus.yaml").is_file() or (candidate / "models").is_dir():
            return candidate
    raise KvplanError("kvplan's bundled data (configs/) is missing: reinstall kvplan")


MAX_YAML_DEPTH = 64


def _strict_loader() -> type:
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently) and
    nesting deeper than MAX_YAML_DEPTH (which would exhaust the recursion limit)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_YAML_DEPTH:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise yaml.YAMLError(
                        f"line {mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.YAMLError(
                        f"line {line}: duplicate key {key!r} (first at line {seen[key]})"
                    )
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml_file(path: Path, *, max_bytes: int = 5_000_000) -> object:
    """Safe-load a YAML file (no object construction), with a size limit; a regular file
    only (a FIFO or device would block or never end), no duplicate keys, bounded depth."""
    import stat

    import yaml

    shown = printable(str(path))
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise KvplanError(f"{shown}: not a regular file (a FIFO, device or socket)")
        if info.st_size > max_bytes:
            raise KvplanError(
                f"{shown}: file is {info.st_size:,} bytes, larger than the {max_bytes:,} limit"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise KvplanError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise KvplanError(f"{shown}: larger than the {max_bytes:,}-byte limit")
    try:
        return yaml.load(data.decode("utf-8"), Loader=_strict_loader())
    except UnicodeDecodeError:
        raise KvplanError(f"{shown}: not a UTF-8 text file") from None
    except RecursionError:
        raise KvplanError(f"{shown}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KvplanError(f"{shown}{where}: invalid YAML: {printable(str(problem))}") from None
