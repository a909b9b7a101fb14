"""Fast answers: a local/catalog answer imports neither torch nor huggingface_hub nor numpy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def test_lazy_command_table_is_the_one_place_of_each_help_line():
    """`kvplan --help` lists COMMANDS without importing them; each entry builds, and the
    command's own --help opens with the table's one-line help, which the command's
    docstring (the rest of its help) does not repeat."""
    import importlib
    import inspect

    from kvplan.cli.app import COMMANDS, load_command

    for name, (module, attr, short) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.help.split("\n\n")[0] == short, name
        doc = inspect.getdoc(getattr(importlib.import_module(module), attr)) or ""
        assert short not in " ".join(doc.split()), name


def test_root_help_imports_no_command_module():
    probe = (
        "import sys, io, contextlib\n"
        "from kvplan.cli.app import main\n"
        "sys.argv = ['kvplan', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print(','.join(m for m in sys.modules if m.startswith(('kvplan.cli.', 'kvplan.core',"
        " 'rich', 'numpy', 'yaml')) and m != 'kvplan.cli.app'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_json_answer_imports_neither_rich_nor_yaml():
    """`size --json` from the catalog: the compiled index replaces catalog.yaml, and rich
    is imported only when a table is printed."""
    probe = PROBE.replace(
        '("torch", "transformers", "huggingface_hub", "numpy", "matplotlib")', '("rich", "yaml")'
    )
    assert probe != PROBE
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_answers_that_read_no_user_file_import_no_pydantic():
    """pydantic validates user files only (a --gpu-file, a policy, a stale catalog.yaml);
    size, fit, pick-g and roofline from the catalog answer without importing it."""
    commands = [
        ["size", "meta-llama/Llama-2-70b", "--json"],
        ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--ctx", "32768"],
        ["pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32", "--json"],
        ["roofline", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--json"],
    ]
    for argv in commands:
        probe = (
            "import sys, io, contextlib\n"
            "from kvplan.cli.app import main\n"
            f"sys.argv = ['kvplan', *{argv!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "print(','.join(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml')))\n"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
        )
        assert out.returncode == 0, (argv, out.stderr)
        assert out.stdout.strip() == "", argv


def test_check_imports_no_pydantic_and_rich_only_for_the_table():
    """`kvplan check` validates a policy without pydantic (kvplan.sources.strict), and only
    the table format draws with rich: json, github, markdown, junit and sarif are text."""
    formats = {"table": "rich", "json": "", "github": "", "markdown": "", "junit": "", "sarif": ""}
    for fmt, expected in formats.items():
        probe = (
            "import sys, io, contextlib\n"
            "from kvplan.cli.app import main\n"
            "sys.argv = ['kvplan', 'check', 'configs/examples/failing.yaml', '--format', "
            f"{fmt!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit as exc:\n"
            "        assert exc.code == 1, exc.code\n"
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules}"
            " & {'pydantic', 'pydantic_core', 'rich'})))\n"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert out.returncode == 0, (fmt, out.stderr)
        assert out.stdout.strip() == expected, fmt
