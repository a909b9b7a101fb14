"""Fast answers: a local/catalog answer imports neither torch nor huggingface_hub nor numpy."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, io, contextlib
from kvplan.cli.app import main
sys.argv = ["kvplan", "size", "meta-llama/Llama-2-70b", "--json"]
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
heavy = [m for m in ("torch", "transformers", "huggingface_hub", "numpy", "matplotlib")
         if m in sys.modules]
print(",".join(heavy))
"""


def test_catalog_answer_imports_no_heavy_modules():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
