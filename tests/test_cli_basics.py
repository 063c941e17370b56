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
