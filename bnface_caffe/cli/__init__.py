"""Command-line entry points. Each tools/<name>.py calls bnface_caffe.cli.<name>.main.

`run` gives every tool the same contract: bad input (UserError) is one line on
stderr and exit status 2; --debug (or BNFACE_DEBUG=1) shows the traceback instead.
"""
import os
import sys

from ..errors import UserError


def write_output(text, path=None):
    """A generated file to `path` (atomically), or to stdout when no path is given."""
    if path:
        from ..prototxt import write_bytes

        write_bytes(path, text.encode())
    else:
        sys.stdout.write(text)


def run(main, argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("BNFACE_DEBUG") == "1"
    if "--debug" in argv:
        argv.remove("--debug")
    prog = os.path.basename(sys.argv[0]) or "bnface"
    try:
        status = main(argv)
    except UserError as err:
        if debug:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `gen_net.py | head`
        sys.stderr.close()
        sys.exit(0)
    sys.exit(status or 0)
