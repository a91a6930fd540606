"""The lines Caffe's solver logs (solver.cpp, sgd_solver.cpp), written and read in one place.

Each writer is Caffe's text with its file:line (BVLC Caffe master 9b89154; Caffe's tools key
on the text, not the line numbers), called as `solver_log.testing(log, iteration, net)`.
Beside them, the patterns that read the same lines back, used by the log parser
(caffelog.py), the reproduction's progress report and the benchmarks.
"""
import re

from .glog import cpp_number
from .lines import line

# -- patterns (any glog line's message; values as Caffe prints them, nan/inf included) -----
ITERATION = re.compile(r"Iteration (\d+)")
ITERATION_RATE = re.compile(r"\] Iteration (\d+) \(([^ ]+) iter/s")
LEARNING_RATE = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
OUTPUT = re.compile(r"(Train|Test) net output #(\d+): (\S+) = (\S+)")
TOTAL_LOSS = re.compile(r"Iteration (\d+).*, loss = (\S+)")  # nvcaffe puts epochs in between
TESTING_NET = re.compile(r"Testing net \(#(\d+)\)")
POLICY = re.compile(r"Learning Rate Policy: (\S+)")
SOLVER_FIELD = re.compile(r"([a-z_0-9]+): (.*)$")
INITIALIZING_SOLVER = "Initializing solver from parameters:"
RESTORING = "Restoring previous solver status from"
OPTIMIZATION_DONE = "Optimization Done."

# -- solver.cpp: set-up --------------------------------------------------------------------
initializing_solver = line("solver.cpp:45", INITIALIZING_SOLVER + " \n{}")
creating_test_net = line("solver.cpp:190", "Creating test net (#{}) specified by {}")
scaffolding_done = line("solver.cpp:57", "Solver scaffolding done.")
finetuning_from = line("solver.cpp:72", "Finetuning from {}")
TRAIN_NET_LINES = {
    "train_net_param": line("solver.cpp:88", "Creating training net specified in train_net_param."),
    "train_net": line("solver.cpp:92", "Creating training net from train_net file: {}"),
    "net_param": line("solver.cpp:97", "Creating training net specified in net_param."),
    "net": line("solver.cpp:102", "Creating training net from net file: {}"),
}


def creating_train_net(log, source):
    """`source`: (field, path or None), as solver_setup.train_net returns it."""
    TRAIN_NET_LINES[source[0]](log, source[1])


# -- solver.cpp / sgd_solver.cpp: Solve, Step, Test, Snapshot ----------------------------------
_solving = line("solver.cpp:289", "Solving {}")
_policy = line("solver.cpp:290", "Learning Rate Policy: {}")
restoring = line("solver.cpp:296", RESTORING + " {}")
restoring_history = line("sgd_solver.cpp:336", "SGDSolver: restoring history")
iteration = line("solver.cpp:239", "Iteration {} ({} iter/s, {}s/{} iters), loss = {}")
lr_line = line("sgd_solver.cpp:112", "Iteration {}, lr = {}")
multistep_status = line("sgd_solver.cpp:50", "MultiStep Status: Iteration {}, step = {}")
clipping = line("sgd_solver.cpp:99", "Gradient clipping: scaling down gradients (L2 norm {0} > "
                                     "{2}) by scale factor {1}")  # called (norm, scale, clip)
testing = line("solver.cpp:347", "Iteration {}, Testing net (#{})")
test_interrupted = line("solver.cpp:396", "Test interrupted.")
test_loss = line("solver.cpp:401", "Test loss: {}")
snapshotting_model = line("solver.cpp:464", "Snapshotting to binary proto file {}")
snapshotting_state = line("sgd_solver.cpp:284", "Snapshotting solver state to binary proto file {}")
snapshotting_model_hdf5 = line("solver.cpp:474", "Snapshotting to HDF5 file {}")
snapshotting_state_hdf5 = line("sgd_solver.cpp:296", "Snapshotting solver state to HDF5 file {}")
stopped_early = line("solver.cpp:311", "Optimization stopped early.")
final_loss = line("solver.cpp:327", "Iteration {}, loss = {}")
optimization_done = line("solver.cpp:332", OPTIMIZATION_DONE)


def solving(log, net_name, policy):
    _solving(log, net_name)
    _policy(log, policy)


def _output(kind, where):
    def write(log, k, name, value, loss_weight):
        text = f"    {kind} net output #{k}: {name} = {cpp_number(value)}"
        if loss_weight:
            text += f" (* {cpp_number(loss_weight)} = {cpp_number(loss_weight * value)} loss)"
        log.info(where, text)
    return write


train_output = _output("Train", "solver.cpp:258")
test_output = _output("Test", "solver.cpp:414")

# -- util/upgrade_proto.cpp (solver files) --------------------------------------------------
_prefix_was_directory = line("upgrade_proto.cpp:1113",
                             "snapshot_prefix was a directory and is replaced to {}")
_prefix_not_given = line("upgrade_proto.cpp:1108", "snapshot_prefix was not specified and is set to {}")
_type_upgrading = line("upgrade_proto.cpp:1084", "Attempting to upgrade input file specified using "
                                                 "deprecated 'solver_type' field (enum)': {}")
_type_upgraded = line("upgrade_proto.cpp:1091", "Successfully upgraded file specified using "
                                                "deprecated 'solver_type' field (enum) to 'type' "
                                                "field (string).")
_type_note = line("upgrade_proto.cpp:1093", "Note that future Caffe releases will only support "
                                            "'type' field (string) for a solver's type.", "W")


def snapshot_prefix_set(log, prefix, was_directory):
    (_prefix_was_directory if was_directory else _prefix_not_given)(log, prefix)


def solver_type_upgraded(log, path):
    _type_upgrading(log, path)
    _type_upgraded(log)
    _type_note(log)


# -- data_layer.cpp ---------------------------------------------------------------------------
restarting_data = line("data_layer.cpp:73", "Restarting data prefetching from start.")

# -- ours (not in Caffe): said plainly, in the same format ------------------------------------
note = line("train.py:1", "{}")
# Warnings that save hours: settings Caffe accepts without a word but that waste the run.
test_rereads_its_data = line(
    "train.py:2", "Test net #{}: test_iter {} x batch {} = {} images per test, but {} holds {} "
    "records: every test reads them {} times over; test_iter {} reads each once", "W")
display_past_max_iter = line(
    "train.py:3", "display {} is larger than max_iter {}: only iteration 0 will be displayed", "W")
test_interval_past_max_iter = line(
    "train.py:4", "test_interval {} is larger than max_iter {}: the nets are tested at iteration "
    "0 only", "W")
momentum_at_least_one = line(
    "train.py:5", "momentum {} is not below 1: the update history grows without bound and "
    "training diverges; use a value in [0, 1) such as 0.9", "W")
negative_base_lr = line(
    "train.py:6", "base_lr {} is negative: every update climbs the loss instead of descending "
    "it", "W")
diverged = line("train.py:1", "Iteration {}, loss = {}: training diverged, stopping", "E")
