"""The lines Caffe's solver logs (solver.cpp, sgd_solver.cpp): each kind written and read in one place.

Writers take the Glog to write to, then the values, and print Caffe's text with its
file:line (BVLC Caffe master 9b89154; Caffe's tools key on the text, not the line numbers).
Beside them, the patterns that read the same lines back, used by the log parser
(caffelog.py), the reproduction's progress report and the benchmarks. Numbers go through
cpp_number so they print like C++ ostreams.
"""
import re

from .glog import cpp_number as num

# -- patterns (any glog line's message; values as Caffe prints them, nan/inf included) -----
ITERATION = re.compile(r"Iteration (\d+)")
ITERATION_RATE = re.compile(r"\] Iteration (\d+) \(([^ ]+) iter/s")
LEARNING_RATE = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
OUTPUT = re.compile(r"(Train|Test) net output #(\d+): (\S+) = (\S+)")
TOTAL_LOSS = re.compile(r"Iteration (\d+).*, loss = (\S+)")  # nvcaffe puts epochs in between
TESTING_NET = re.compile(r"Testing net \(#(\d+)\)")
POLICY = re.compile(r"Learning Rate Policy: (\S+)")
SOLVING = re.compile(r"\] Solving (.*)$")
SOLVER_FIELD = re.compile(r"([a-z_0-9]+): (.*)$")
INITIALIZING_SOLVER = "Initializing solver from parameters:"
RESTORING = "Restoring previous solver status from"
OPTIMIZATION_DONE = "Optimization Done."


def _info(log, where, message):
    log.info(where, message)


# -- util/upgrade_proto.cpp -------------------------------------------------------------------
def snapshot_prefix_set(log, prefix, was_directory):
    if was_directory:
        _info(log, "upgrade_proto.cpp:1113",
              f"snapshot_prefix was a directory and is replaced to {prefix}")
    else:
        _info(log, "upgrade_proto.cpp:1108",
              f"snapshot_prefix was not specified and is set to {prefix}")


def solver_type_upgraded(log, path):
    _info(log, "upgrade_proto.cpp:1084", "Attempting to upgrade input file specified using "
          f"deprecated 'solver_type' field (enum)': {path}")
    _info(log, "upgrade_proto.cpp:1091", "Successfully upgraded file specified using deprecated "
          "'solver_type' field (enum) to 'type' field (string).")
    log.warning("upgrade_proto.cpp:1093", "Note that future Caffe releases will only support "
                "'type' field (string) for a solver's type.")


# -- solver.cpp: set-up ---------------------------------------------------------------------
def initializing_solver(log, param_text):
    _info(log, "solver.cpp:45", f"{INITIALIZING_SOLVER} \n" + param_text)


TRAIN_NET_LINES = {
    "train_net_param": ("solver.cpp:88", "Creating training net specified in train_net_param."),
    "train_net": ("solver.cpp:92", "Creating training net from train_net file: {}"),
    "net_param": ("solver.cpp:97", "Creating training net specified in net_param."),
    "net": ("solver.cpp:102", "Creating training net from net file: {}"),
}


def creating_train_net(log, source):
    """`source`: (field, path or None), as solver_setup.train_net returns it."""
    where, text = TRAIN_NET_LINES[source[0]]
    _info(log, where, text.format(source[1]))


def creating_test_net(log, i, source):
    _info(log, "solver.cpp:190", f"Creating test net (#{i}) specified by {source}")


def scaffolding_done(log):
    _info(log, "solver.cpp:57", "Solver scaffolding done.")


def finetuning_from(log, path):
    _info(log, "solver.cpp:72", f"Finetuning from {path}")


# -- solver.cpp: Solve / Step / Test ----------------------------------------------------------
def solving(log, net_name, policy):
    _info(log, "solver.cpp:289", f"Solving {net_name}")
    _info(log, "solver.cpp:290", f"Learning Rate Policy: {policy}")


def restoring(log, path):
    _info(log, "solver.cpp:296", f"{RESTORING} {path}")


def restoring_history(log):
    _info(log, "sgd_solver.cpp:336", "SGDSolver: restoring history")


def iteration(log, it, per_s, lapse, display, smoothed_loss):
    _info(log, "solver.cpp:239", f"Iteration {it} ({num(per_s)} iter/s, {num(lapse)}s/{display} "
          f"iters), loss = {num(smoothed_loss)}")


def _output_line(kind, k, name, value, loss_weight):
    text = f"    {kind} net output #{k}: {name} = {num(value)}"
    if loss_weight:
        text += f" (* {num(loss_weight)} = {num(loss_weight * value)} loss)"
    return text


def train_output(log, k, name, value, loss_weight):
    _info(log, "solver.cpp:258", _output_line("Train", k, name, value, loss_weight))


def lr_line(log, it, rate):
    _info(log, "sgd_solver.cpp:112", f"Iteration {it}, lr = {num(rate)}")


def multistep_status(log, it, step):
    _info(log, "sgd_solver.cpp:50", f"MultiStep Status: Iteration {it}, step = {step}")


def clipping(log, norm, scale, clip):
    _info(log, "sgd_solver.cpp:99", f"Gradient clipping: scaling down gradients (L2 norm "
          f"{num(norm)} > {num(clip)}) by scale factor {num(scale)}")


def testing(log, it, i):
    _info(log, "solver.cpp:347", f"Iteration {it}, Testing net (#{i})")


def test_interrupted(log):
    _info(log, "solver.cpp:396", "Test interrupted.")


def test_loss(log, loss):
    _info(log, "solver.cpp:401", f"Test loss: {num(loss)}")


def test_output(log, k, name, value, loss_weight):
    _info(log, "solver.cpp:414", _output_line("Test", k, name, value, loss_weight))


def snapshotting_model(log, path):
    _info(log, "solver.cpp:464", f"Snapshotting to binary proto file {path}")


def snapshotting_state(log, path):
    _info(log, "sgd_solver.cpp:284", f"Snapshotting solver state to binary proto file {path}")


def stopped_early(log):
    _info(log, "solver.cpp:311", "Optimization stopped early.")


def final_loss(log, it, smoothed_loss):
    _info(log, "solver.cpp:327", f"Iteration {it}, loss = {num(smoothed_loss)}")


def optimization_done(log):
    _info(log, "solver.cpp:332", OPTIMIZATION_DONE)


# -- data_layer.cpp ---------------------------------------------------------------------------
def restarting_data(log):
    _info(log, "data_layer.cpp:73", "Restarting data prefetching from start.")


# -- ours (not in Caffe): said plainly, in the same format ------------------------------------
def note(log, message):
    _info(log, "train.py:1", message)


def diverged(log, it, loss):
    log.error("train.py:1", f"Iteration {it}, loss = {num(loss)}: training diverged, stopping")
