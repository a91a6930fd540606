"""The solver's log lines: each writer prints Caffe's text (written out here as Caffe prints
it), and the patterns beside it read the same line back."""
import io
import re

from bnface_caffe.formats import solver_log
from bnface_caffe.formats.glog import Glog

LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (\S+)\] (.*)$")


def lines(write):
    log = Glog(stderr=False)
    out = io.StringIO()
    log.sinks.append(out)
    write(log)
    return [LINE.match(line).groups() for line in out.getvalue().splitlines()]


def test_iteration_output_and_lr_lines_are_caffes_and_parse_back():
    got = lines(lambda log: (solver_log.iteration(log, 200, 3.58423, 27.9, 100, 2.98628),
                             solver_log.train_output(log, 0, "loss", 2.98628, 1.0),
                             solver_log.lr_line(log, 200, 0.055),
                             solver_log.test_output(log, 1, "accuracy", 0.8125, 0.0)))
    assert got == [
        ("solver.cpp:239", "Iteration 200 (3.58423 iter/s, 27.9s/100 iters), loss = 2.98628"),
        ("solver.cpp:258", "    Train net output #0: loss = 2.98628 (* 1 = 2.98628 loss)"),
        ("sgd_solver.cpp:112", "Iteration 200, lr = 0.055"),
        ("solver.cpp:414", "    Test net output #1: accuracy = 0.8125"),
    ]
    text = "\n".join(m for _, m in got)
    assert solver_log.ITERATION_RATE.search("] " + got[0][1]).groups() == ("200", "3.58423")
    assert solver_log.TOTAL_LOSS.search(got[0][1]).groups() == ("200", "2.98628")
    assert solver_log.OUTPUT.search(got[1][1]).groups() == ("Train", "0", "loss", "2.98628")
    assert solver_log.LEARNING_RATE.search(got[2][1]).group(1) == "0.055"
    assert solver_log.OUTPUT.findall(text)[-1] == ("Test", "1", "accuracy", "0.8125")


def test_setup_and_snapshot_lines():
    got = lines(lambda log: (solver_log.creating_train_net(log, ("net", "a.prototxt")),
                             solver_log.creating_test_net(log, 0, "net file: a.prototxt"),
                             solver_log.solving(log, "bnface_bn", "multistep"),
                             solver_log.testing(log, 0, 0),
                             solver_log.multistep_status(log, 14000, 1),
                             solver_log.snapshotting_model(log, "s_iter_5.caffemodel"),
                             solver_log.snapshotting_state(log, "s_iter_5.solverstate"),
                             solver_log.restarting_data(log)))
    assert [m for _, m in got] == [
        "Creating training net from net file: a.prototxt",
        "Creating test net (#0) specified by net file: a.prototxt",
        "Solving bnface_bn", "Learning Rate Policy: multistep",
        "Iteration 0, Testing net (#0)",
        "MultiStep Status: Iteration 14000, step = 1",
        "Snapshotting to binary proto file s_iter_5.caffemodel",
        "Snapshotting solver state to binary proto file s_iter_5.solverstate",
        "Restarting data prefetching from start.",
    ]
    assert solver_log.POLICY.search(got[3][1]).group(1) == "multistep"
    assert solver_log.TESTING_NET.search(got[4][1]).group(1) == "0"
