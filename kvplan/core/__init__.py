"""Domain core: pure functions over pydantic models. No I/O, no printing."""
