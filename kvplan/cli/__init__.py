"""CLI: thin typer commands that parse flags, call the core and render. No math here."""
