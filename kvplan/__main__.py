"""`python -m kvplan` runs the CLI."""

from kvplan.cli.app import main

if __name__ == "__main__":
    main()
