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
MAX_NUMBER_DIGITS = 30  # far beyond any size or count; Python refuses int() past 4,300
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
    if len(number) > MAX_NUMBER_DIGITS:
        raise KvplanError(
            f"cannot read size {text[:40]!r}...: {len(number):,} digits is no real size",
            hint="use a number with a unit such as 40GiB, 80GB, 512MiB",
        )
    factor: int = _SIZE_UNITS[unit.lower()]
    if "." in number:
        whole, frac = number.split(".")
        return int(whole) * factor + int(frac) * factor // int(10 ** len(frac))
    return int(number) * factor


_COUNT_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+]?[0-9]+)?)\s*([a-zA-Z]?)\s*$")


def parse_count(text: str) -> int:
    """A parameter-style count: '13B', '13e9', '7.5B', '350M', '1.2T' or a plain integer.
    B = 10**9 (billions, how model sizes are quoted); the result is rounded to an integer."""
    match = _COUNT_RE.match(text)
    suffix = match.group(2).lower() if match else ""
    if not match or suffix not in _COUNT_SUFFIXES or len(match.group(1)) > MAX_NUMBER_DIGITS:
        raise KvplanError(
            f"cannot read count {text[:40]!r}", hint="write e.g. 13B, 13e9, 350M or 13000000000"
        )
    number = match.group(1)
    mantissa, _, exponent = number.lower().partition("e")
    if exponent and int(exponent) > 30:
        raise KvplanError(f"count {text!r} is absurdly large")
    whole, _, frac = mantissa.partition(".")
    scale = _COUNT_SUFFIXES[suffix] * 10 ** int(exponent or 0)
    value: int = int(whole or 0) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    return value


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
