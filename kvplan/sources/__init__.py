"""Sources: turn config files, the bundled catalog and the Hub into core models."""
