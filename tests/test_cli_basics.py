import subprocess
import sys

from bertkit.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 1
    assert "demo" in capsys.readouterr().out


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "bertkit", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("bertkit ")


def test_library_never_imports_peers():
    code = (
        "import sys, bertkit, bertkit.cli; bertkit.cli.build_parser();"
        "bad = [m for m in ('transformers', 'tokenizers') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _leaf_commands() -> list[list[str]]:
    import argparse

    from bertkit.cli import build_parser

    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append(path)
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, [*path, name])

    walk(build_parser(), [])
    return found


def test_every_command_prints_its_help(capsys):
    """--help of every command renders (a help text with "15%" once crashed argparse's formatter)."""
    import pytest

    commands = _leaf_commands()
    assert len(commands) >= 15 and ["pretrain-data"] in commands
    for command in commands:
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0, command
        assert "usage: bertkit " + " ".join(command) in capsys.readouterr().out
