"""kvplan: KV-cache capacity planning from a model's real config.

Data flows one way: sources (config files, Hub, catalogs) -> core (pure math over
pydantic models) -> presentation (rich tables / JSON envelope) -> cli (thin typer commands).
"""

__version__ = "0.1.0"
