"""The flags every tool spells the same way, and the logger a tool hands down.

--gpu ID[,ID...]|all (one-device tools use the first, as `caffe time` does), --stage
A,B (comma-separated and repeatable: both forms add up), -q/--quiet, --version and --debug
(every tool), and --log FILE for tools that log. `make_log` builds the run's Glog from these flags and
glog's own environment variables; nothing else configures logging.
"""
import argparse
import os
import sys

from .. import __version__
from ..errors import UserError
from ..formats.glog import Glog


def warn(program, message):
    """A warning of a tool's own (not a log line): `<prog>: warning: <message>` on stderr."""
    print(f"{program}: warning: {message}", file=sys.stderr)


def add_version(p):
    """--version, and --debug (cli.run takes it out of argv before the tool parses it; it is
    declared here so that every tool's --help shows it)."""
    p.add_argument("--version", action="version", version=f"%(prog)s (bnface-caffe) {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the Python traceback instead of one line "
                        "(also BNFACE_DEBUG=1)")


def add_quiet(p, what="progress and set-up lines on stderr (warnings and errors stay)"):
    p.add_argument("-q", "--quiet", action="store_true", help=f"no {what}")


def add_gpu(p, several=False):
    help_text = ("GPU id, comma-separated ids, or 'all'" if several else
                 "GPU id (given several ids or 'all', the first is used, as `caffe` does)")
    p.add_argument("--gpu", "-gpu", metavar="ID[,ID..]|all", help=help_text + "; default: CPU")


def add_stage(p):
    p.add_argument("--level", type=int, default=0, help="NetState level (default 0)")
    p.add_argument("--stage", action="append", default=[], metavar="A[,B..]",
                   help="NetState stages, comma-separated; repeatable")


def stages(args):
    """The --stage values as one tuple ('--stage a,b --stage c' → ('a', 'b', 'c')). Without
    any, ("",): Caffe splits its empty -stage flag into one empty stage, and its nets carry
    `stage: ""` in their NetState."""
    return tuple(s for text in args.stage for s in text.split(",") if s) or ("",)


def parse_gpus(text):
    """None (no --gpu: the CPU), or the list of CUDA device ids, checked against this machine."""
    if text is None:
        return None
    import torch
    available = torch.cuda.device_count()
    if text == "all":
        ids = list(range(available))
    else:
        try:
            ids = [int(t) for t in text.split(",")]
        except ValueError:
            raise UserError(f"--gpu {text}: give a device id, comma-separated ids, or 'all'") from None
    if not ids or any(i < 0 or i >= available for i in ids):
        raise UserError(f"--gpu {text}: {'no' if not available else available} CUDA device"
                        f"{'s' if available != 1 else ''} visible here; drop --gpu to run on "
                        "the CPU")
    return ids


def add_log(p):
    p.add_argument("--log", help="also write the log to this file (Caffe's glog format)")


def make_log(program, args=None, to_stderr=True, info_on_stderr=True):
    """The run's Glog: stderr (unless `to_stderr` is False), --quiet, --log FILE, and glog's
    GLOG_minloglevel / GLOG_logtostderr / GLOG_log_dir. `info_on_stderr` False: INFO lines
    reach the files only (a tool that is quiet by default, as glog itself is on stderr)."""
    quiet = bool(getattr(args, "quiet", False))
    log = Glog.from_environment(program, quiet=quiet)
    log.stderr = to_stderr
    if not info_on_stderr:
        log.stderr_level = 2 if quiet else 1
    path = getattr(args, "log", None)
    if path:
        check_writable(path, "--log")
        log.add_file(path)
    return log


def check_writable(path, flag="-o"):
    """An output path must be a file in a folder we can write: one clear line otherwise."""
    if os.path.isdir(path):
        raise UserError(f"{flag} {path}: is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UserError(f"{flag} {path}: cannot write there ({probe} is a file, not a folder)")
    if not os.access(probe, os.W_OK):
        raise UserError(f"{flag} {path}: cannot write there ({probe} is not writable)")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: the file is not writable")
    return path


def single_device(gpu_text, log, announce=None):
    """The one device of a tool that runs on one (`caffe time`/`test` use the first --gpu id),
    logged by `announce(log, id, name)` (default: as `caffe time` logs it)."""
    import torch

    from ..formats import tool_log
    announce = announce or tool_log.time_device
    ids = parse_gpus(gpu_text)
    if not ids:
        announce(log)
        return torch.device("cpu")
    announce(log, ids[0], torch.cuda.get_device_name(ids[0]))
    return torch.device("cuda", ids[0])


def add_pixel_scale(p, default=None, help_text="pixel multiplier after the mean"):
    """--pixel-scale (the transform's `scale`); the old spelling --scale still works here,
    with a warning, since --scale now means the iteration scale in every tool."""
    p.add_argument("--pixel-scale", type=float, default=default, help=help_text)
    p.add_argument("--scale", dest="deprecated_pixel_scale", type=float, help=argparse.SUPPRESS)


def pixel_scale(args, program):
    if args.deprecated_pixel_scale is None:
        return args.pixel_scale
    import sys
    print(f"{program}: warning: --scale as the pixel multiplier is deprecated; use --pixel-scale "
          "(--scale is the iteration scale in the other tools)", file=sys.stderr)
    return args.deprecated_pixel_scale
