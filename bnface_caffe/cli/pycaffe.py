"""bnface-pycaffe: run a script written for pycaffe (BVLC Caffe's Python interface) unmodified,
on the engine.

    bnface-pycaffe [--debug] SCRIPT.py [ARGS...]
    python -m bnface_caffe.pycaffe SCRIPT.py [ARGS...]

SCRIPT runs as `python SCRIPT.py ARGS...` would run it (as __main__, its own folder first on
sys.path, sys.argv = [SCRIPT.py, ARGS...]), with `import caffe` (caffe.io,
caffe.proto.caffe_pb2, `from caffe import layers as L, params as P`) meaning
bnface_caffe.pycaffe, also in the modules its Python layers import. Its exit status is the
script's; bad input to pycaffe (a missing prototxt, an unknown blob, a wrong input shape, a
Python layer's module not found or failing) ends it with one line on stderr and status 2.
Options go before the script; everything after it is the script's:
  -h, --help   this text
  --version    print the version
  --debug      on bad input, show the Python traceback instead of one line
"""
import os
import runpy
import sys

from .. import __version__
from ..errors import UserError
from . import run

USAGE = "usage: bnface-pycaffe [--debug] SCRIPT.py [ARGS...]"


def main(argv):
    argv = list(argv)
    while argv and argv[0].startswith("-"):
        option = argv.pop(0)
        if option in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if option == "--version":
            print(f"bnface-pycaffe (bnface-caffe) {__version__}")
            return 0
        raise UserError(f"unknown option {option}; {USAGE}")
    if not argv:
        raise UserError(f"no script given; {USAGE}")
    run_script(argv[0], argv[1:])
    return 0


def run_script(path, args):
    """Run the script at `path` as __main__ with `caffe` meaning bnface_caffe.pycaffe."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such script")
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "__main__.py")):
        raise UserError(f"{path}: is a folder without __main__.py; give the script's path")
    from ..pycaffe import modules
    modules.install()
    sys.argv = [path] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    runpy.run_path(path, run_name="__main__")


def entry(prog):
    """Console entry: only the options before the script are ours (a script's own --debug
    stays the script's)."""
    argv = sys.argv[1:]
    split = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    own, rest = argv[:split], argv[split:]
    run(lambda options: main(options + rest), argv=own, prog=prog)


if __name__ == "__main__":
    entry("bnface-pycaffe")
