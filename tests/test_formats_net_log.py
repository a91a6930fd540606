"""Net set-up lines as `caffe time` prints them, and the Top-shape reader used to compare logs."""
import io

from bnface_caffe.formats import net_log, tool_log
from bnface_caffe.formats.glog import Glog, message_of


def messages(write):
    log = Glog(stderr=False)
    out = io.StringIO()
    log.sinks.append(out)
    write(log)
    return [message_of(line) for line in out.getvalue().splitlines()]


def test_setup_lines_and_top_shapes_round_trip():
    got = messages(lambda log: (net_log.creating_layer_in_net(log, "conv1"),
                                net_log.bottom(log, "conv1", "data"),
                                net_log.top(log, "conv1", "conv1"),
                                net_log.top(log, "relu1", "conv1", in_place=True),
                                net_log.setting_up(log, "conv1"),
                                net_log.top_shape(log, (64, 32, 50, 50)),
                                net_log.top_shape(log, (), loss_weight=1.0),
                                net_log.memory_required(log, 5120001)))
    assert got == ["Creating Layer conv1", "conv1 <- data", "conv1 -> conv1",
                   "relu1 -> conv1 (in-place)", "Setting up conv1",
                   "Top shape: 64 32 50 50 (5120000)", "Top shape: (1)",
                   "    with loss weight 1", "Memory required for data: 20480004"]
    assert net_log.top_shapes("\n".join(got)) == [(64, 32, 50, 50), ()]


def test_caffe_time_lines():
    got = messages(lambda log: (tool_log.benchmark_begins(log, 2),
                                tool_log.layer_times(log, "conv1", 1.5, 2.25),
                                tool_log.average_times(log, 10.0, 20.0, 61.0, 2)))
    assert got == ["*** Benchmark begins ***", "Testing for 2 iterations.",
                   "     conv1\tforward: 1.5 ms.", "     conv1\tbackward: 2.25 ms.",
                   "Average Forward pass: 5 ms.", "Average Backward pass: 10 ms.",
                   "Average Forward-Backward: 30.5 ms.", "Total Time: 61 ms."]
