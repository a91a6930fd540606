"""caffe: Caffe's command-line tool on the engine, for shell recipes written for `caffe`.

    bnface-caffe train -solver S.prototxt [-weights A.caffemodel[,B..] | -snapshot X.solverstate]
                 [-gpu ID[,ID..]|all] [-sigint_effect stop|snapshot|none] [-sighup_effect ..]
                 [-level N] [-stage A,B]
    bnface-caffe test -model NET.prototxt -weights W.caffemodel [-iterations 50] [-gpu ID]
                 [-level N] [-stage A,B]
    bnface-caffe time -model NET.prototxt [-iterations 50] [-phase TRAIN|TEST] [-gpu ID]
                 [-weights W.caffemodel] [-level N] [-stage A,B]
    bnface-caffe device_query [-gpu ID[,ID..]|all]

Flags are read as gflags reads them (`-f v`, `-f=v`, `--f v`, `--f=v`, anywhere on the line;
see gflags.py), and glog's -log_dir, -logtostderr and -minloglevel work as in Caffe (so do
the GLOG_* variables). The log lines are Caffe's, on stderr. `train` is tools/train.py's
engine run, `time` is tools/time_net.py's timing, without their extra lines.

Exit status: 0 done (and for no command, after the usage text, as Caffe), 1 the loss diverged,
2 bad input: an unknown command or flag, a missing or unreadable file (Caffe aborts there).
"""
import argparse
import os
import sys

import numpy as np

from .. import __version__
from ..errors import UserError
from ..formats import caffemodel, tool_log
from ..formats.glog import Glog
from . import gflags, options

CAFFE_VERSION = "1.0.0"   # what `caffe --version` reports; recipes sometimes check it
COMMANDS = {
    "train": "train or finetune a model",
    "test": "score a model",
    "device_query": "show GPU diagnostic information",
    "time": "benchmark model execution time",
}
SIGNAL_EFFECTS = ("stop", "snapshot", "none")

Flag = gflags.Flag
CAFFE_FLAGS = [
    Flag("gpu", "string", "", "optional; GPU device ids to run on, comma-separated, or 'all'; "
         "train splits each batch over several"),
    Flag("solver", "string", "", "the solver prototxt (train)"),
    Flag("model", "string", "", "the net prototxt (test, time)"),
    Flag("phase", "string", "", "optional; TRAIN or TEST, the net phase for time (default "
         "TRAIN)"),
    Flag("level", "int32", 0, "optional; the net state's level"),
    Flag("stage", "string", "", "optional; the net state's stages, comma-separated"),
    Flag("snapshot", "string", "", "optional; a .solverstate to resume training from"),
    Flag("weights", "string", "", "optional for train: caffemodels to fine-tune from, "
         "comma-separated (not with -snapshot); the weights to score for test"),
    Flag("iterations", "int32", 50, "the number of iterations (test batches, time passes)"),
    Flag("sigint_effect", "string", "stop", "optional; what SIGINT does during train: "
         "snapshot, stop or none"),
    Flag("sighup_effect", "string", "snapshot", "optional; what SIGHUP does during train: "
         "snapshot, stop or none"),
]
# glog's and gflags' own flags that recipes pass; None: not given (the GLOG_* variable or
# glog's default applies). The colour, verbosity and threshold flags are accepted and change
# nothing here: stderr always gets every line, as `caffe` sets alsologtostderr.
GLOG_FLAGS = [
    Flag("log_dir", "string", None, "also write the log to a file in this folder"),
    Flag("logtostderr", "bool", None, "log to stderr only (no log file)"),
    Flag("alsologtostderr", "bool", None, "accepted; caffe always logs to stderr too"),
    Flag("minloglevel", "int32", None, "drop lines below this level (0 INFO .. 3 FATAL)"),
    Flag("stderrthreshold", "int32", None, "accepted; no effect"),
    Flag("colorlogtostderr", "bool", None, "accepted; no effect"),
    Flag("v", "int32", None, "accepted; no effect"),
    Flag("help", "bool", False, "show this text"),
    Flag("helpfull", "bool", False, "show this text"),
    Flag("helpshort", "bool", False, "show this text"),
    Flag("version", "bool", False, "show the version"),
]


def usage(program):
    commands = "\n".join(f"  {name:<16}{text}" for name, text in COMMANDS.items())
    return (f"{program}: command line brew\nusage: {program} <command> <args>\n\ncommands:\n"
            f"{commands}\n\n{gflags.describe(CAFFE_FLAGS, 'tools/caffe.cpp')}\n\n"
            "  --version (show the version)  --debug (show the traceback instead of one-line "
            "errors)\n")


def main(argv):
    program = os.path.basename(sys.argv[0]) or "caffe"
    positional, flags = gflags.parse(argv, CAFFE_FLAGS + GLOG_FLAGS)
    if flags["help"] or flags["helpfull"] or flags["helpshort"]:
        sys.stdout.write(usage(program))
        return 0
    if flags["version"]:
        print(f"{program} version {CAFFE_VERSION} (bnface-caffe {__version__}, on the PyTorch "
              "engine)")
        return 0
    if not positional:
        sys.stdout.write(usage(program))   # Caffe shows its usage and exits 0
        return 0
    if len(positional) > 1:
        raise UserError(f"one command at a time, got {' '.join(positional)}; files go in "
                        "flags (-solver S.prototxt, -model NET.prototxt)")
    command = positional[0]
    if command not in COMMANDS:
        raise UserError(f"unknown action: {command}; the actions are "
                        f"{', '.join(sorted(COMMANDS))}")
    return {"train": train, "test": test, "time": time, "device_query": device_query}[command](
        flags)


def make_log(flags):
    """The run's Glog, named `caffe` (log files caffe.<host>.<user>.log.INFO.*), with glog's
    flags over the GLOG_* variables."""
    env = dict(os.environ)
    if flags["log_dir"] is not None:
        env["GLOG_log_dir"] = flags["log_dir"]
    if flags["logtostderr"] is not None:
        env["GLOG_logtostderr"] = "1" if flags["logtostderr"] else "0"
    if flags["minloglevel"] is not None:
        env["GLOG_minloglevel"] = str(flags["minloglevel"])
    return Glog.from_environment("caffe", environ=env)


def stages(flags):
    """-stage split on commas; no -stage is one empty stage, as in Caffe."""
    return tuple(flags["stage"].split(","))


def check_iterations(flags):
    if flags["iterations"] < 1:
        raise UserError(f"-iterations {flags['iterations']}: give at least 1")
    return flags["iterations"]


def check_file(path, flag):
    if not os.path.isfile(path):
        raise UserError(f"-{flag} {path}: no such file")


# -- train -----------------------------------------------------------------------------------
def train(flags):
    """tools/train.py's engine run with Caffe's flags (same log, same checks)."""
    from . import train as train_tool
    if not flags["solver"]:
        raise UserError("train needs a solver: -solver S.prototxt")
    for name in ("sigint_effect", "sighup_effect"):
        if flags[name] not in SIGNAL_EFFECTS:
            raise UserError(f"-{name} {flags[name]}: give snapshot, stop or none")
    argv = ["--backend", "engine", "--level", str(flags["level"]),
            "--sigint-effect", flags["sigint_effect"], "--sighup-effect", flags["sighup_effect"]]
    for flag in ("weights", "snapshot", "gpu", "stage"):
        if flags[flag]:
            argv += [f"--{flag}", flags[flag]]
    log = make_log(flags)
    try:
        return train_tool.main(argv + ["--", flags["solver"]], log=log, progress_bar=False)
    finally:
        log.close()


# -- test ------------------------------------------------------------------------------------
def test(flags):
    """Score a model: forward -iterations batches in TEST, log each output of each batch,
    then the mean of each over the batches (a loss output with its weighted value)."""
    from ..engine import Net, read_net
    from ..proto import caffe_pb2
    model, weights = flags["model"], flags["weights"]
    if not model:
        raise UserError("test needs the net to score: -model NET.prototxt")
    if not weights:
        raise UserError("test needs the weights to score: -weights W.caffemodel")
    iterations = check_iterations(flags)
    log = make_log(flags)
    try:
        net_param = read_net(model, log)            # bad files fail before any line is logged
        trained = caffemodel.read(weights)
        device = options.single_device(flags["gpu"] or None, log, tool_log.test_device)
        net = Net(net_param, phase=caffe_pb2.TEST, stages=stages(flags), level=flags["level"],
                  device=device, source=model, logger=log)
        try:
            net.copy_trained_layers_from(trained, weights)
            score_batches(net, iterations, log)
        finally:
            net.close()
    finally:
        log.close()
    return 0


def score_batches(net, iterations, log):
    """Caffe's test loop: sums kept in float32 as Caffe keeps them, so the means print alike."""
    loss = np.float32(0)
    sums, names = [], []
    tool_log.running_for(log, iterations)
    for i in range(iterations):
        loss = np.float32(loss + np.float32(net.forward()))
        k = 0
        for name, value in net.outputs():
            for score in np.asarray(value, np.float32).ravel():
                if i == 0:
                    sums.append(np.float32(score))
                    names.append(name)
                else:
                    sums[k] = np.float32(sums[k] + score)
                tool_log.batch_output(log, i, name, float(score))
                k += 1
    tool_log.test_loss(log, float(loss / np.float32(iterations)))
    for name, total in zip(names, sums):
        tool_log.mean_output(log, name, total / np.float32(iterations),
                             net.loss_weights.get(name, 0.0))


# -- time ------------------------------------------------------------------------------------
def time(flags):
    """tools/time_net.py's timing with Caffe's flags and lines."""
    from . import time_net
    if not flags["model"]:
        raise UserError("time needs a net: -model NET.prototxt")
    phase = flags["phase"] or "TRAIN"
    if phase not in ("TRAIN", "TEST"):
        raise UserError(f"-phase {flags['phase']}: give TRAIN or TEST")
    check_iterations(flags)
    if flags["weights"]:
        check_file(flags["weights"], "weights")
    args = argparse.Namespace(model=flags["model"], iterations=flags["iterations"],
                              gpu=flags["gpu"] or None, phase=phase, stage=[flags["stage"]],
                              level=flags["level"], weights=flags["weights"] or None,
                              fast=False)
    log = make_log(flags)
    try:
        return time_net.time_model(args, log, log, training_line=False)
    finally:
        log.close()


# -- device_query ----------------------------------------------------------------------------
def device_query(flags):
    """The properties of each -gpu device that CUDA reports through PyTorch."""
    log = make_log(flags)
    try:
        tool_log.querying_gpus(log, flags["gpu"])
        for device_id in options.parse_gpus(flags["gpu"] or None) or []:
            describe_device(device_id, log)
    finally:
        log.close()
    return 0


def describe_device(device_id, log):
    import torch
    props = torch.cuda.get_device_properties(device_id)
    known = [("Device id", device_id), ("Major revision number", props.major),
             ("Minor revision number", props.minor), ("Name", props.name),
             ("Total global memory", props.total_memory),
             ("Total shared memory per block", getattr(props, "shared_memory_per_block", None)),
             ("Total registers per block", getattr(props, "regs_per_block", None)),
             ("Warp size", getattr(props, "warp_size", None)),
             ("Maximum threads per block", getattr(props, "max_threads_per_block", None)),
             ("Clock rate", getattr(props, "clock_rate", None)),
             ("Number of multiprocessors", props.multi_processor_count)]
    for label, value in known:
        if value is not None:      # what this PyTorch does not report is left out
            tool_log.device_property(log, label, value)


if __name__ == "__main__":
    from . import run
    run(main)
