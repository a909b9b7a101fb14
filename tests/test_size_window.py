"""For sliding-window models `size` says the per-token figure holds below the window and gives
the effective rate at the asked context."""

from __future__ import annotations

from conftest import run_cli


def test_gemma2_effective_rate_at_context():
    # Gemma-2-9B: 21 sliding(4096) + 21 full layers, each 2 x 8 x 256 x 2 B = 8,192 B/token.
    # At 32,768 tokens: 172,032 x 4,096 + 172,032 x 32,768 bytes per sequence, i.e.
    # 172,032 x 4,096 / 32,768 + 172,032 = 21,504 + 172,032 = 193,536 B per token.
    out = run_cli("size", "google/gemma-2-9b-it", "--ctx", "32768").out
    assert "per token (below 4,096 tokens)" in out and "344,064" in out
    assert "per token, effective at 32,768" in out and "193,536" in out
    short = run_cli("size", "google/gemma-2-9b-it", "--ctx", "2048").out
    assert "effective" not in short  # below the window every layer grows
