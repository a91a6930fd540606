"""The lines of Caffe's command-line tool (tools/caffe.cpp): train, test, time, device_query.

Written here for tools/train.py, tools/time_net.py and tools/caffe.py alike, so a shell
recipe or log reader written for `caffe` sees the same text.
"""
import numpy as np

from .glog import cpp_number
from .lines import line

OPTIMIZATION_DONE = "Optimization Done."

# -- caffe train ----------------------------------------------------------------------------
use_cpu = line("caffe.cpp:197", "Use CPU.")
_using_gpus = line("caffe.cpp:204", "Using GPUs {}")
_gpu_name = line("caffe.cpp:209", "GPU {}: {}")
resuming_from = line("caffe.cpp:235", "Resuming from {}")
starting_optimization = line("caffe.cpp:239", "Starting Optimization")
optimization_done = line("caffe.cpp:250", OPTIMIZATION_DONE)


def using_gpus(log, ids, names):
    _using_gpus(log, ", ".join(str(i) for i in ids))
    for i, name in zip(ids, names):
        _gpu_name(log, i, name)


# -- caffe test ----------------------------------------------------------------------------
_use_gpu_test = line("caffe.cpp:266", "Use GPU with device ID {}")
_gpu_device_name_test = line("caffe.cpp:270", "GPU device name: {}")
_use_cpu_test = line("caffe.cpp:275", "Use CPU.")
running_for = line("caffe.cpp:281", "Running for {} iterations.")
batch_output = line("caffe.cpp:304", "Batch {}, {} = {}")
test_loss = line("caffe.cpp:309", "Loss: {}")
_mean_output = line("caffe.cpp:321", "{} = {}{}")


def test_device(log, device_id=None, name=None):
    """`caffe test`'s device lines: "Use CPU.", or the GPU's id and name."""
    if device_id is None:
        _use_cpu_test(log)
    else:
        _use_gpu_test(log, device_id)
        _gpu_device_name_test(log, name)


def mean_output(log, name, mean, loss_weight):
    """`<output> = <mean over batches>`, with ` (* <weight> = <weighted> loss)` for a loss."""
    note = ""
    if loss_weight:
        # Caffe multiplies in float: the product is rounded to float32 before printing.
        weighted = float(np.float32(loss_weight) * np.float32(mean))
        note = f" (* {cpp_number(loss_weight)} = {cpp_number(weighted)} loss)"
    _mean_output(log, name, float(mean), note)


# -- caffe time -----------------------------------------------------------------------------
_use_gpu_time = line("caffe.cpp:339", "Use GPU with device ID {}")
use_cpu_time = line("caffe.cpp:343", "Use CPU.")


def time_device(log, device_id=None, name=None):
    """`caffe time`'s device line ("Use CPU." or the GPU id; it does not name the GPU)."""
    if device_id is None:
        use_cpu_time(log)
    else:
        _use_gpu_time(log, device_id)


performing_forward = line("caffe.cpp:351", "Performing Forward")
initial_loss = line("caffe.cpp:356", "Initial loss: {}")
performing_backward = line("caffe.cpp:357", "Performing Backward")
_benchmark_begins = line("caffe.cpp:365", "*** Benchmark begins ***")
_testing_for = line("caffe.cpp:366", "Testing for {} iterations.")
iteration_time = line("caffe.cpp:394", "Iteration: {} forward-backward time: {} ms.")
average_time_per_layer = line("caffe.cpp:397", "Average time per layer: ")
_layer_forward = line("caffe.cpp:400", "{:>10}\tforward: {} ms.")
_layer_backward = line("caffe.cpp:403", "{:>10}\tbackward: {} ms.")
_average_forward = line("caffe.cpp:408", "Average Forward pass: {} ms.")
_average_backward = line("caffe.cpp:410", "Average Backward pass: {} ms.")
_average_both = line("caffe.cpp:412", "Average Forward-Backward: {} ms.")
_total_time = line("caffe.cpp:414", "Total Time: {} ms.")
benchmark_ends = line("caffe.cpp:415", "*** Benchmark ends ***")


def benchmark_begins(log, iterations):
    _benchmark_begins(log)
    _testing_for(log, iterations)


def layer_times(log, name, forward_ms, backward_ms):
    _layer_forward(log, name, float(forward_ms))
    _layer_backward(log, name, float(backward_ms))


def average_times(log, forward_ms, backward_ms, total_ms, iterations):
    _average_forward(log, float(forward_ms / iterations))
    _average_backward(log, float(backward_ms / iterations))
    _average_both(log, float(total_ms / iterations))
    _total_time(log, float(total_ms))


# -- caffe device_query ---------------------------------------------------------------------
querying_gpus = line("caffe.cpp:138", "Querying GPUs {}")
# common.cpp DeviceQuery: one line per property, the label padded to 31 columns.
DEVICE_PROPERTY_LINES = {
    "Device id": 178, "Major revision number": 179, "Minor revision number": 180,
    "Name": 181, "Total global memory": 182, "Total shared memory per block": 183,
    "Total registers per block": 184, "Warp size": 185, "Maximum threads per block": 187,
    "Clock rate": 194, "Number of multiprocessors": 199,
}


def device_property(log, label, value):
    log.info(f"common.cpp:{DEVICE_PROPERTY_LINES[label]}", f"{label + ':':<31}{value}")
