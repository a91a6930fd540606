"""The lines Caffe's solver and `caffe train` log, with Caffe's text and file:line.

Line numbers are those of BVLC Caffe master (9b89154); Caffe's tools key on the message
text, not on them. Numbers go through cpp_number so they print like C++ ostreams.
"""
from ..glog import cpp_number as num
from ..glog import log


def _info(where, message):
    log.info(where, message)


# tools/caffe.cpp
def use_cpu():
    _info("caffe.cpp:197", "Use CPU.")


def using_gpus(ids, names):
    _info("caffe.cpp:204", "Using GPUs " + ", ".join(str(i) for i in ids))
    for i, name in zip(ids, names):
        _info("caffe.cpp:209", f"GPU {i}: {name}")


def resuming_from(path):
    _info("caffe.cpp:235", f"Resuming from {path}")


def starting_optimization():
    _info("caffe.cpp:239", "Starting Optimization")


def tool_optimization_done():
    _info("caffe.cpp:250", "Optimization Done.")


# util/upgrade_proto.cpp
def snapshot_prefix_set(prefix, was_directory):
    if was_directory:
        _info("upgrade_proto.cpp:1113", f"snapshot_prefix was a directory and is replaced to {prefix}")
    else:
        _info("upgrade_proto.cpp:1108", f"snapshot_prefix was not specified and is set to {prefix}")


def solver_type_upgraded(path):
    _info("upgrade_proto.cpp:1084", "Attempting to upgrade input file specified using deprecated "
          f"'solver_type' field (enum)': {path}")
    _info("upgrade_proto.cpp:1091", "Successfully upgraded file specified using deprecated "
          "'solver_type' field (enum) to 'type' field (string).")
    log.warning("upgrade_proto.cpp:1093", "Note that future Caffe releases will only support "
                "'type' field (string) for a solver's type.")


# solver.cpp: set-up
def initializing_solver(param_text):
    _info("solver.cpp:45", "Initializing solver from parameters: \n" + param_text)


def creating_train_net(source):
    where = {"train_net_param": "solver.cpp:88", "train_net": "solver.cpp:92",
             "net_param": "solver.cpp:97", "net": "solver.cpp:102"}[source[0]]
    text = {"train_net_param": "Creating training net specified in train_net_param.",
            "train_net": f"Creating training net from train_net file: {source[1]}",
            "net_param": "Creating training net specified in net_param.",
            "net": f"Creating training net from net file: {source[1]}"}[source[0]]
    _info(where, text)


def creating_test_net(i, source):
    _info("solver.cpp:190", f"Creating test net (#{i}) specified by {source}")


def scaffolding_done():
    _info("solver.cpp:57", "Solver scaffolding done.")


def finetuning_from(path):
    _info("solver.cpp:72", f"Finetuning from {path}")


# solver.cpp: Solve / Step / Test
def solving(net_name, policy):
    _info("solver.cpp:289", f"Solving {net_name}")
    _info("solver.cpp:290", f"Learning Rate Policy: {policy}")


def restoring(path):
    _info("solver.cpp:296", f"Restoring previous solver status from {path}")


def restoring_history():
    _info("sgd_solver.cpp:336", "SGDSolver: restoring history")


def iteration(it, per_s, lapse, display, smoothed_loss):
    _info("solver.cpp:239", f"Iteration {it} ({num(per_s)} iter/s, {num(lapse)}s/{display} "
          f"iters), loss = {num(smoothed_loss)}")


def _output_line(kind, k, name, value, loss_weight):
    text = f"    {kind} net output #{k}: {name} = {num(value)}"
    if loss_weight:
        text += f" (* {num(loss_weight)} = {num(loss_weight * value)} loss)"
    return text


def train_output(k, name, value, loss_weight):
    _info("solver.cpp:258", _output_line("Train", k, name, value, loss_weight))


def lr_line(it, rate):
    _info("sgd_solver.cpp:112", f"Iteration {it}, lr = {num(rate)}")


def multistep_status(it, step):
    _info("sgd_solver.cpp:50", f"MultiStep Status: Iteration {it}, step = {step}")


def clipping(norm, scale, clip):
    _info("sgd_solver.cpp:99", f"Gradient clipping: scaling down gradients (L2 norm {num(norm)} "
          f"> {num(clip)}) by scale factor {num(scale)}")


def testing(it, i):
    _info("solver.cpp:347", f"Iteration {it}, Testing net (#{i})")


def test_interrupted():
    _info("solver.cpp:396", "Test interrupted.")


def test_loss(loss):
    _info("solver.cpp:401", f"Test loss: {num(loss)}")


def test_output(k, name, value, loss_weight):
    _info("solver.cpp:414", _output_line("Test", k, name, value, loss_weight))


def snapshotting_model(path):
    _info("solver.cpp:464", f"Snapshotting to binary proto file {path}")


def snapshotting_state(path):
    _info("sgd_solver.cpp:284", f"Snapshotting solver state to binary proto file {path}")


def stopped_early():
    _info("solver.cpp:311", "Optimization stopped early.")


def final_loss(it, smoothed_loss):
    _info("solver.cpp:327", f"Iteration {it}, loss = {num(smoothed_loss)}")


def optimization_done():
    _info("solver.cpp:332", "Optimization Done.")


# Our additions (not in Caffe): say so plainly, in the same format.
def note(message):
    _info("train.py:1", message)


def diverged(it, loss):
    log.error("train.py:1", f"Iteration {it}, loss = {num(loss)}: training diverged, stopping")
