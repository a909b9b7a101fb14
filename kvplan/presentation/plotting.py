"""The one way a view opens a chart file: check the file type, import matplotlib lazily
(the optional `kvplan[plot]` extra), and say how to install it when it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvplan.errors import KvplanError

PLOT_SUFFIXES = (".svg", ".png", ".pdf")


def plot_target(path: str, suffixes: tuple[str, ...] = PLOT_SUFFIXES) -> Path:
    """The file a --plot writes, refused unless its type is one of `suffixes`."""
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise KvplanError(
            f"--plot {path}: unsupported file type", hint=f"use one of {', '.join(suffixes)}"
        )
    return target


def pyplot(hint: str = "pip install 'kvplan[plot]'") -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend, or one clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KvplanError("--plot needs matplotlib, which is not installed", hint=hint) from None
    return plt


def save_figure(plt: Any, fig: Any, target: Path, path: str) -> None:
    """Lay out, write and close `fig`; a file that cannot be written is one input error
    naming the --plot path, never a traceback (the figure is closed either way)."""
    fig.tight_layout()
    try:
        fig.savefig(target)
    except OSError as exc:
        raise KvplanError(f"--plot {path}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)
