"""`python -m kvplan` and the `kvplan` script: run the CLI."""

import gc


def main() -> None:
    """Turn the cyclic garbage collector off before typer and kvplan are imported (see
    `kvplan.cli.app.main`, which keeps it off while the command runs)."""
    gc.disable()
    from kvplan.cli.app import main as run

    run()


if __name__ == "__main__":
    main()
