"""Shared test helpers."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# tools/reproduce.py's pipeline at a size that trains in seconds (6 identities, 4-wide nets,
# a couple of iterations per run): the end-to-end tests' plan overrides.
TINY_PLAN = ["--set", "identities=6", "--set", "images_per_identity=10",
             "--set", "original_epochs=2", "--set", "widths=4,4,4,4,4,4,4,8",
             "--set", "tests_per_original_run=2", "--set", "display_per_original_run=2",
             "--set", "test_batch_size=10"]


def run_tool(tool, *args, cwd=None, timeout=300, env=None):
    """Run tools/<tool>.py with this interpreter; returns the CompletedProcess."""
    cmd = [sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"), *map(str, args)]
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def assert_one_line_error(result, *fragments):
    """Bad input contract: exit 2, one stderr line, no traceback, naming what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def tool():
    return run_tool


def call_main(main, argv, capsys):
    """Run a tool's main in-process through cli.run, as its wrapper does:
    (exit status, stdout, stderr)."""
    from bnface_caffe.cli import run
    with pytest.raises(SystemExit) as done:
        run(main, [str(a) for a in argv])
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def assert_one_line_status(status, err, *fragments):
    """assert_one_line_error for an in-process call_main result."""
    assert status == 2, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
