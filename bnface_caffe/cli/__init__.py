"""Command-line entry points: one module per tool with `main(argv) -> int`.

Each is installed as a console script (`bnface-<tool>`, see pyproject.toml) and wrapped by
tools/<tool>.py; both go through `run`, which gives every tool the same contract: bad input
(UserError) is one line on stderr and exit status 2, a failed run (RunFailed) one line and
status 1, Ctrl-C status 130; --debug (or BNFACE_DEBUG=1) shows the traceback instead.
"""
import importlib
import os
import sys

from ..errors import RunFailed, UserError


def write_output(text, path=None):
    """A generated file to `path` (atomically), or to stdout when no path is given."""
    if path:
        from ..formats.prototxt import write_bytes
        from .options import check_writable

        write_bytes(check_writable(path), text.encode())
    else:
        sys.stdout.write(text)


def run(main, argv=None, prog=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("BNFACE_DEBUG") == "1"
    if "--debug" in argv:
        argv.remove("--debug")
    prog = prog or os.path.basename(sys.argv[0]) or "bnface"
    try:
        status = main(argv)
    except (UserError, RunFailed) as err:
        if debug:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, UserError) else err.status)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `gen_net.py | head`
        sys.stderr.close()
        sys.exit(0)
    sys.exit(status or 0)


def console(tool):
    """The console-script entry for `tool` (bnface-<tool> → bnface_caffe.cli.<tool>.main)."""
    def entry():
        module = importlib.import_module(f"{__name__}.{tool}")
        run(module.main, prog=f"bnface-{tool.replace('_', '-')}")
    return entry
