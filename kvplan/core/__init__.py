"""Domain core: pure functions over immutable value classes (`kvplan.core.frozen`; no
pydantic on the answer path, see docs/performance.md). No I/O, no printing."""
