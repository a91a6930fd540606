"""The lines of Caffe's command-line tool (tools/caffe.cpp): train, test, time, device_query.

Written here for tools/train.py, tools/time_net.py and tools/caffe.py alike, so a shell
recipe or log reader written for `caffe` sees the same text.
"""
from .glog import cpp_number as num

OPTIMIZATION_DONE = "Optimization Done."


def use_cpu(log, where="caffe.cpp:197"):
    log.info(where, "Use CPU.")


def using_gpus(log, ids, names):
    log.info("caffe.cpp:204", "Using GPUs " + ", ".join(str(i) for i in ids))
    for i, name in zip(ids, names):
        log.info("caffe.cpp:209", f"GPU {i}: {name}")


def use_gpu(log, device_id, name, where="caffe.cpp:339"):
    log.info(where, f"Use GPU with device ID {device_id}")
    log.info(where, f"GPU device name: {name}")


def resuming_from(log, path):
    log.info("caffe.cpp:235", f"Resuming from {path}")


def starting_optimization(log):
    log.info("caffe.cpp:239", "Starting Optimization")


def optimization_done(log):
    log.info("caffe.cpp:250", OPTIMIZATION_DONE)


# -- caffe time ---------------------------------------------------------------------------
def performing_forward(log):
    log.info("caffe.cpp:351", "Performing Forward")


def initial_loss(log, loss):
    log.info("caffe.cpp:356", f"Initial loss: {num(loss)}")


def performing_backward(log):
    log.info("caffe.cpp:357", "Performing Backward")


def benchmark_begins(log, iterations):
    log.info("caffe.cpp:365", "*** Benchmark begins ***")
    log.info("caffe.cpp:366", f"Testing for {iterations} iterations.")


def iteration_time(log, j, ms):
    log.info("caffe.cpp:394", f"Iteration: {j} forward-backward time: {num(ms)} ms.")


def average_time_per_layer(log):
    log.info("caffe.cpp:397", "Average time per layer: ")


def layer_times(log, name, forward_ms, backward_ms):
    log.info("caffe.cpp:400", f"{name:>10}\tforward: {num(forward_ms)} ms.")
    log.info("caffe.cpp:403", f"{name:>10}\tbackward: {num(backward_ms)} ms.")


def average_times(log, forward_ms, backward_ms, total_ms, iterations):
    log.info("caffe.cpp:408", f"Average Forward pass: {num(forward_ms / iterations)} ms.")
    log.info("caffe.cpp:410", f"Average Backward pass: {num(backward_ms / iterations)} ms.")
    log.info("caffe.cpp:412", f"Average Forward-Backward: {num(total_ms / iterations)} ms.")
    log.info("caffe.cpp:414", f"Total Time: {num(total_ms)} ms.")


def benchmark_ends(log):
    log.info("caffe.cpp:415", "*** Benchmark ends ***")
