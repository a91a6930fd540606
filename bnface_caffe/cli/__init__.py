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


# A checkout's tools/ folder holds caffe.py (the `caffe` command line). Python puts a script's
# folder first on sys.path, so while tools/<tool>.py runs, `import caffe` (a real pycaffe for
# --backend caffe, or a Python layer's module) would find that wrapper instead: run() takes
# the folder off the path before the tool starts.
TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "tools")


def _forget_tools_dir():
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != TOOLS_DIR]


def run(main, argv=None, prog=None):
    _forget_tools_dir()
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
