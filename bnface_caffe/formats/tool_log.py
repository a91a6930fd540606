"""The lines of Caffe's command-line tool (tools/caffe.cpp): train, test, time.

Written here for tools/train.py, tools/time_net.py and tools/caffe.py alike, so a shell
recipe or log reader written for `caffe` sees the same text.
"""
from .lines import line

OPTIMIZATION_DONE = "Optimization Done."

use_cpu = line("caffe.cpp:197", "Use CPU.")
use_cpu_time = line("caffe.cpp:343", "Use CPU.")
_using_gpus = line("caffe.cpp:204", "Using GPUs {}")
_gpu_name = line("caffe.cpp:209", "GPU {}: {}")
_use_gpu = line("caffe.cpp:339", "Use GPU with device ID {}")
_gpu_device_name = line("caffe.cpp:339", "GPU device name: {}")
resuming_from = line("caffe.cpp:235", "Resuming from {}")
starting_optimization = line("caffe.cpp:239", "Starting Optimization")
optimization_done = line("caffe.cpp:250", OPTIMIZATION_DONE)


def using_gpus(log, ids, names):
    _using_gpus(log, ", ".join(str(i) for i in ids))
    for i, name in zip(ids, names):
        _gpu_name(log, i, name)


def use_gpu(log, device_id, name):
    _use_gpu(log, device_id)
    _gpu_device_name(log, name)


# -- caffe time ---------------------------------------------------------------------------
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
