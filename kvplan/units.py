"""Units: the core works in bytes (int), seconds and FLOP/s; conversion happens only here.

GiB = 2**30 bytes (what nvidia-smi and PyTorch report), GB = 10**9 bytes (what vendors
print on boxes and bandwidth sheets). Every printed size names its unit.
"""

from __future__ import annotations

import re

from kvplan.errors import KvplanError

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": KB,
    "mb": MB,
    "gb": GB,
    "tb": TB,
    "kib": KiB,
    "mib": MiB,
    "gib": GiB,
    "tib": TiB,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Parse '40GiB', '80 GB', '1.5TiB' or a plain byte count into bytes (int)."""
    match = _SIZE_RE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise KvplanError(
            f"cannot read size {text!r}",
            hint="use a number with a unit such as 40GiB, 80GB, 512MiB",
        )
    number, unit = match.groups()
    factor: int = _SIZE_UNITS[unit.lower()]
    if "." in number:
        whole, frac = number.split(".")
        return int(whole) * factor + int(frac) * factor // int(10 ** len(frac))
    return int(number) * factor


def gib(n_bytes: int | float) -> float:
    return n_bytes / GiB


def fmt_gib(n_bytes: int | float, digits: int = 2) -> str:
    """Bytes as 'X.XX GiB' (binary), the unit named."""
    return f"{n_bytes / GiB:,.{digits}f} GiB"


def fmt_bytes(n_bytes: int | float) -> str:
    """Human bytes in binary units, e.g. '800.0 KiB', '12.5 GiB'."""
    value = float(n_bytes)
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(value) >= factor:
            return f"{value / factor:,.2f} {unit}"
    return f"{int(value):,} B"


def fmt_count(n: int | float) -> str:
    """Parameter-style counts: 68.98B, 7.24M."""
    value = float(n)
    for unit, factor in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= factor:
            return f"{value / factor:,.2f}{unit}"
    return f"{int(value):,}"


def fmt_tokens(n: int) -> str:
    """Context lengths the way people say them: 4096 -> '4k', 131072 -> '128k'."""
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    return f"{n:,}"
