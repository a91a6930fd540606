"""Caffe logs written here, parsed to the exact rows Caffe's parse_log.py would give
(with the learning rate of each row's own iteration), plus the variants it cannot read."""
import math
import os
import time

import pytest

from bnface_caffe import caffelog
from bnface_caffe.caffelog import LogParser, parse_log
from bnface_caffe.cli.parse_log import csv_text

# Caffe 1.0 (master) shape: progress line with iter/s, loss weights, a multistep
# schedule, and lines that are not Caffe's (a progress bar, a blank line, an
# MPI-prefixed copy of an output line that must not count).
FULL_LOG = """\
Log file created at: 2016/11/29 19:35:20
Running on machine: host
Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg
I1129 19:35:20.000000  1234 caffe.cpp:197] Use CPU.
I1129 19:35:20.100000  1234 solver.cpp:45] Initializing solver from parameters: 
test_iter: 10
test_interval: 100
base_lr: 0.1
display: 50
max_iter: 200
lr_policy: "multistep"
gamma: 0.5
stepvalue: 100
stepvalue: 150
train_state {
  level: 0
  stage: ""
}
I1129 19:35:20.150000  1234 solver.cpp:102] Creating training net from net file: net.prototxt
I1129 19:35:20.200000  1234 solver.cpp:289] Solving facenet
I1129 19:35:20.200100  1234 solver.cpp:290] Learning Rate Policy: multistep
I1129 19:35:20.300000  1234 solver.cpp:347] Iteration 0, Testing net (#0)
I1129 19:35:21.000000  1234 solver.cpp:414]     Test net output #0: accuracy = 0.1
I1129 19:35:21.000010  1234 solver.cpp:414]     Test net output #1: loss = 2.5 (* 1 = 2.5 loss)
I1129 19:35:21.500000  1234 solver.cpp:239] Iteration 0 (0 iter/s, 1.2s/50 iters), loss = 2.6
I1129 19:35:21.500010  1234 solver.cpp:258]     Train net output #0: accuracy = 0.125
I1129 19:35:21.500020  1234 solver.cpp:258]     Train net output #1: loss = 2.6 (* 1 = 2.6 loss)
I1129 19:35:21.500030  1234 sgd_solver.cpp:112] Iteration 0, lr = 0.1
downloading weights ... 50%
I1129 19:35:31.500000  1234 solver.cpp:239] Iteration 50 (5 iter/s, 10s/50 iters), loss = 1.9
I1129 19:35:31.500010  1234 solver.cpp:258]     Train net output #0: accuracy = 0.375
I1129 19:35:31.500020  1234 solver.cpp:258]     Train net output #1: loss = 1.8 (* 1 = 1.8 loss)
[1] I1129 19:35:31.500020  1235 solver.cpp:258]     Train net output #0: accuracy = 9
I1129 19:35:31.500030  1234 sgd_solver.cpp:112] Iteration 50, lr = 0.1
W1129 19:35:35.000000  1234 data_layer.cpp:73] Restarting data prefetching from start.
I1129 19:35:41.000000  1234 solver.cpp:347] Iteration 100, Testing net (#0)
I1129 19:35:41.500000  1234 solver.cpp:414]     Test net output #0: accuracy = 0.5
I1129 19:35:41.500010  1234 solver.cpp:414]     Test net output #1: loss = 1.25 (* 1 = 1.25 loss)
I1129 19:35:42.000000  1234 solver.cpp:239] Iteration 100 (5 iter/s, 10.5s/50 iters), loss = 1.5
I1129 19:35:42.000010  1234 solver.cpp:258]     Train net output #0: accuracy = 0.5
I1129 19:35:42.000020  1234 solver.cpp:258]     Train net output #1: loss = 1.5 (* 1 = 1.5 loss)
I1129 19:35:42.000025  1234 sgd_solver.cpp:50] MultiStep Status: Iteration 100, step = 1
I1129 19:35:42.000030  1234 sgd_solver.cpp:112] Iteration 100, lr = 0.05

I1129 19:35:52.000000  1234 solver.cpp:239] Iteration 150 (5 iter/s, 10s/50 iters), loss = 1.25
I1129 19:35:52.000010  1234 solver.cpp:258]     Train net output #0: accuracy = 0.625
I1129 19:35:52.000020  1234 solver.cpp:258]     Train net output #1: loss = 1.125 (* 1 = 1.125 loss)
I1129 19:35:52.000025  1234 sgd_solver.cpp:50] MultiStep Status: Iteration 150, step = 2
I1129 19:35:52.000030  1234 sgd_solver.cpp:112] Iteration 150, lr = 0.025
I1129 19:36:02.000000  1234 solver.cpp:464] Snapshotting to binary proto file facenet_iter_200.caffemodel
I1129 19:36:02.100000  1234 solver.cpp:327] Iteration 200, loss = 1
I1129 19:36:02.100010  1234 solver.cpp:347] Iteration 200, Testing net (#0)
I1129 19:36:02.600000  1234 solver.cpp:414]     Test net output #0: accuracy = 0.75
I1129 19:36:02.600010  1234 solver.cpp:414]     Test net output #1: loss = 0.75 (* 1 = 0.75 loss)
I1129 19:36:02.700000  1234 solver.cpp:332] Optimization Done.
I1129 19:36:02.700010  1234 caffe.cpp:250] Optimization Done.
"""


def row(it, sec, lr, **values):
    return {"NumIters": float(it), "Seconds": sec, "LearningRate": lr, **values}


def write(tmp_path, text, name="run.log", year=2016):
    path = tmp_path / name
    path.write_text(text)
    stamp = time.mktime((year, 6, 1, 12, 0, 0, 0, 0, -1))  # the year a prefix without one means
    os.utime(path, (stamp, stamp))
    return str(path)


def test_full_shape_rows_with_each_rows_own_learning_rate(tmp_path):
    log = parse_log(write(tmp_path, FULL_LOG))
    assert log.train == [
        row(0, 1.30001, 0.1, accuracy=0.125, loss=2.6),  # Seconds: at the row's first output line
        row(50, 11.30001, 0.1, accuracy=0.375, loss=1.8),
        row(100, 21.80001, 0.05, accuracy=0.5, loss=1.5),
        row(150, 31.80001, 0.025, accuracy=0.625, loss=1.125),
    ]
    # the test at 200 has no "Iteration 200, lr" line (no update at max_iter): last rate printed
    assert log.test == [
        row(0, 0.8, 0.1, accuracy=0.1, loss=2.5),
        row(100, 21.3, 0.05, accuracy=0.5, loss=1.25),
        row(200, 42.4, 0.025, accuracy=0.75, loss=0.75),
    ]
    assert log.policy == "multistep" and log.net_name == "facenet" and log.done
    assert log.solver["stepvalue"] == ["100", "150"] and log.solver["base_lr"] == ["0.1"]
    assert "level" not in log.solver  # nested train_state fields are not the solver's
    assert log.lr_points == [(0, 0.1), (50, 0.1), (100, 0.05), (150, 0.025)]
    assert [(it, loss) for it, _, loss in log.loss_points] == [(0, 2.6), (50, 1.9), (100, 1.5), (150, 1.25), (200, 1.0)]


def test_like_caffe_gives_parse_log_learning_rates(tmp_path):
    # parse_log.py: each row carries the rate printed *before* it; row 0 copies row 1's.
    log = parse_log(write(tmp_path, FULL_LOG), like_caffe=True)
    assert [r["LearningRate"] for r in log.train] == [0.1, 0.1, 0.1, 0.05]
    assert [r["LearningRate"] for r in log.test] == [0.1, 0.1, 0.025]
    same = parse_log(write(tmp_path, FULL_LOG, "again.log"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "LearningRate"} for r in rows]
    assert strip(log.train) == strip(same.train) and strip(log.test) == strip(same.test)


# Caffe of 2014-2015: "Iteration N, loss = X" without rates, outputs without the
# loss-weight suffix, the lr line from solver.cpp.
SHORT_LOG = """\
I0210 13:39:22.381027 25210 solver.cpp:160] Solving LeNet
I0210 13:39:22.381030 25210 solver.cpp:247] Iteration 0, Testing net (#0)
I0210 13:39:23.381027 25210 solver.cpp:298]     Test net output #0: accuracy = 0.0913
I0210 13:39:23.381027 25210 solver.cpp:298]     Test net output #1: loss = 2.33
I0210 13:39:23.481027 25210 solver.cpp:191] Iteration 0, loss = 2.31
I0210 13:39:23.481027 25210 solver.cpp:206]     Train net output #0: loss = 2.31
I0210 13:39:23.481027 25210 solver.cpp:403] Iteration 0, lr = 0.01
I0210 13:39:25.481027 25210 solver.cpp:191] Iteration 100, loss = 0.25
I0210 13:39:25.481027 25210 solver.cpp:206]     Train net output #0: loss = 0.25
I0210 13:39:25.481027 25210 solver.cpp:403] Iteration 100, lr = 0.00992565
I0210 13:39:27.481027 25210 solver.cpp:247] Iteration 200, Testing net (#0)
I0210 13:39:28.481027 25210 solver.cpp:298]     Test net output #0: accuracy = 0.9712
I0210 13:39:28.481027 25210 solver.cpp:298]     Test net output #1: loss = 0.0921
I0210 13:39:28.581027 25210 solver.cpp:191] Iteration 200, loss = 0.125
I0210 13:39:28.581027 25210 solver.cpp:206]     Train net output #0: loss = 0.125
I0210 13:39:28.581027 25210 solver.cpp:403] Iteration 200, lr = 0.00985258
I0210 13:39:30.581027 25210 solver.cpp:191] Iteration 300, loss = 0.0625
"""


def test_short_shape_and_incomplete_last_row(tmp_path):
    log = parse_log(write(tmp_path, SHORT_LOG))
    assert log.train == [
        row(0, 1.1, 0.01, loss=2.31),
        row(100, 3.1, 0.00992565, loss=0.25),
        row(200, 6.2, 0.00985258, loss=0.125),
    ]
    assert log.test == [
        row(0, 1.0, 0.01, accuracy=0.0913, loss=2.33),
        row(200, 6.1, 0.00985258, accuracy=0.9712, loss=0.0921),
    ]
    assert log.policy is None  # this log printed neither the policy nor the parameters
    # a row still missing an output when the log ends is kept with what it has (parse_log.py,
    # and so --like-caffe, drops it)
    cut = SHORT_LOG.replace("Test net output #1: loss = 0.0921\n", "")
    kept = parse_log(write(tmp_path, cut, "cut.log")).test
    assert kept[1] == row(200, 6.1, 0.00985258, accuracy=0.9712)
    assert len(parse_log(write(tmp_path, cut, "cut.log"), like_caffe=True).test) == 1


def test_year_rollover_without_and_with_year_in_prefix(tmp_path):
    plain = """\
I1231 23:59:50.000000  1 solver.cpp:289] Solving n
I1231 23:59:55.000000  1 solver.cpp:239] Iteration 0 (0 iter/s, 0s/1 iters), loss = 1
I1231 23:59:55.000000  1 solver.cpp:258]     Train net output #0: loss = 1
I1231 23:59:55.000000  1 sgd_solver.cpp:112] Iteration 0, lr = 0.5
I0101 00:00:10.500000  1 solver.cpp:239] Iteration 1 (0.1 iter/s, 15.5s/1 iters), loss = 0.5
I0101 00:00:10.500000  1 solver.cpp:258]     Train net output #0: loss = 0.5
I0101 00:00:10.500000  1 sgd_solver.cpp:112] Iteration 1, lr = 0.5
I0101 00:00:11.000000  1 solver.cpp:239] Iteration 2 (2 iter/s, 0.5s/1 iters), loss = 0.25
I0101 00:00:11.000000  1 solver.cpp:258]     Train net output #0: loss = 0.25
"""
    expected = [row(0, 5.0, 0.5, loss=1.0), row(1, 20.5, 0.5, loss=0.5), row(2, 21.0, 0.5, loss=0.25)]
    assert parse_log(write(tmp_path, plain, year=2015)).train == expected
    # newer glog writes the year (I20151231 ...); Caffe's parse_log.py crashes on it
    with_year = "".join(line.replace("I1231 ", "I20151231 ").replace("I0101 ", "I20160101 ")
                        for line in plain.splitlines(keepends=True))
    assert parse_log(write(tmp_path, with_year, "y.log", year=1999)).train == expected


def test_year_prefix_as_newer_glog_writes_it(tmp_path):
    text = """\
I20261129 19:35:20.123456 1234 solver.cpp:289] Solving facenet
I20261129 19:35:20.223456 1234 solver.cpp:347] Iteration 0, Testing net (#0)
I20261129 19:35:21.123456 1234 solver.cpp:414]     Test net output #0: accuracy = 0.25
I20261129 19:35:21.623456 1234 solver.cpp:239] Iteration 0 (0 iter/s, 0.5s/10 iters), loss = 3
I20261129 19:35:21.623456 1234 solver.cpp:258]     Train net output #0: loss = 3 (* 1 = 3 loss)
I20261129 19:35:21.623456 1234 sgd_solver.cpp:112] Iteration 0, lr = 0.055
I20261129 19:35:31.123456 1234 solver.cpp:347] Iteration 10, Testing net (#0)
I20261129 19:35:32.123456 1234 solver.cpp:414]     Test net output #0: accuracy = 0.5
I20261129 19:35:32.623456 1234 solver.cpp:239] Iteration 10 (1 iter/s, 10s/10 iters), loss = 2
I20261129 19:35:32.623456 1234 solver.cpp:258]     Train net output #0: loss = 2 (* 1 = 2 loss)
"""
    log = parse_log(write(tmp_path, text))
    assert log.train == [row(0, 1.5, 0.055, loss=3.0), row(10, 12.5, 0.055, loss=2.0)]
    assert log.test == [row(0, 1.0, 0.055, accuracy=0.25), row(10, 12.0, 0.055, accuracy=0.5)]


def test_nan_and_inf_outputs_are_values_unless_like_caffe(tmp_path):
    text = """\
I0301 10:00:00.000000  7 solver.cpp:289] Solving n
I0301 10:00:01.000000  7 solver.cpp:239] Iteration 0 (0 iter/s, 1s/10 iters), loss = 2
I0301 10:00:01.000000  7 solver.cpp:258]     Train net output #0: loss = 2 (* 1 = 2 loss)
I0301 10:00:01.000000  7 sgd_solver.cpp:112] Iteration 0, lr = 1
I0301 10:00:02.000000  7 solver.cpp:239] Iteration 10 (10 iter/s, 1s/10 iters), loss = nan
I0301 10:00:02.000000  7 solver.cpp:258]     Train net output #0: loss = nan (* 1 = nan loss)
I0301 10:00:02.000000  7 sgd_solver.cpp:112] Iteration 10, lr = 1
I0301 10:00:03.000000  7 solver.cpp:239] Iteration 20 (10 iter/s, 1s/10 iters), loss = -nan
I0301 10:00:03.000000  7 solver.cpp:258]     Train net output #0: loss = -nan (* 1 = -nan loss)
I0301 10:00:03.000000  7 sgd_solver.cpp:112] Iteration 20, lr = 1
I0301 10:00:04.000000  7 solver.cpp:239] Iteration 30 (10 iter/s, 1s/10 iters), loss = 1.#QNAN
I0301 10:00:04.000000  7 solver.cpp:258]     Train net output #0: loss = 1.#QNAN (* 1 = 1.#QNAN loss)
I0301 10:00:05.000000  7 solver.cpp:258]     Train net output #0: loss = -inf (* 1 = -inf loss)
"""
    path = write(tmp_path, text)
    losses = [r["loss"] for r in parse_log(path).train]
    assert losses[0] == 2.0 and all(math.isnan(v) for v in losses[1:4]) and losses[4] == -math.inf
    assert [r["NumIters"] for r in parse_log(path).train] == [0.0, 10.0, 20.0, 30.0, 30.0]
    # parse_log.py's number pattern reads "1.#QNAN" as 1.0 and does not see nan/-nan/-inf
    assert [(r["NumIters"], r["loss"]) for r in parse_log(path, like_caffe=True).train] == [(0.0, 2.0), (30.0, 1.0)]


def test_two_test_nets_follow_parse_logs_row_rules(tmp_path):
    def test_block(it, t, a0, a1):
        return (f"I0501 08:00:{t:02d}.000000  5 solver.cpp:347] Iteration {it}, Testing net (#0)\n"
                f"I0501 08:00:{t:02d}.100000  5 solver.cpp:414]     Test net output #0: acc = {a0}\n"
                f"I0501 08:00:{t:02d}.100000  5 solver.cpp:414]     Test net output #1: loss = 1\n"
                f"I0501 08:00:{t:02d}.200000  5 solver.cpp:347] Iteration {it}, Testing net (#1)\n"
                f"I0501 08:00:{t:02d}.300000  5 solver.cpp:414]     Test net output #0: acc = {a1}\n"
                f"I0501 08:00:{t:02d}.300000  5 solver.cpp:414]     Test net output #1: loss = 2\n")
    text = ("I0501 08:00:00.000000  5 solver.cpp:289] Solving n\n" + test_block(0, 1, 0.125, 0.25)
            + test_block(100, 10, 0.5, 0.625) + test_block(200, 20, 0.75, 0.875))
    log = parse_log(write(tmp_path, text))
    # the first row holds one value per name, the last net's; later iterations get one row per net
    assert [(r["NumIters"], r["acc"], r["loss"]) for r in log.test] == [
        (0.0, 0.25, 2.0), (100.0, 0.5, 1.0), (100.0, 0.625, 2.0), (200.0, 0.75, 1.0), (200.0, 0.875, 2.0)]
    assert all(math.isnan(r["LearningRate"]) for r in log.test)  # no rate was printed
    # the curves keep the nets apart
    acc = [(net, it, v) for net, it, _, name, v in log.test_points if name == "acc"]
    assert acc == [(0, 0, 0.125), (1, 0, 0.25), (0, 100, 0.5), (1, 100, 0.625), (0, 200, 0.75), (1, 200, 0.875)]


def test_restart_appends_rows_and_head_without_solving(tmp_path):
    first = SHORT_LOG.split("I0210 13:39:27")[0]
    resumed = ("I0210 14:00:00.000000 25300 solver.cpp:160] Solving LeNet\n"
               "I0210 14:00:00.000000 25300 solver.cpp:165] Restoring previous solver status from x_iter_100.solverstate\n"
               "I0210 14:00:01.000000 25300 solver.cpp:191] Iteration 100, loss = 0.5\n"
               "I0210 14:00:01.000000 25300 solver.cpp:206]     Train net output #0: loss = 0.5\n"
               "I0210 14:00:01.000000 25300 solver.cpp:403] Iteration 100, lr = 0.00992565\n")
    log = parse_log(write(tmp_path, first + resumed))
    assert [(r["NumIters"], r["loss"]) for r in log.train] == [(0.0, 2.31), (100.0, 0.25), (100.0, 0.5)]
    assert log.restores == 1
    # output before the first "Solving" is skipped, as parse_log.py does ...
    early = "I0210 13:00:00.000000 1 x.cpp:1] Iteration 5\nI0210 13:00:00.000000 1 x.cpp:1]     Train net output #0: loss = 9\n"
    assert parse_log(write(tmp_path, early + SHORT_LOG, "early.log")).train == parse_log(write(tmp_path, SHORT_LOG, "s.log")).train
    # ... but a log whose head (with "Solving") was cut off is still read
    headless = SHORT_LOG.split("\n", 1)[1]
    assert [r["NumIters"] for r in parse_log(write(tmp_path, headless, "headless.log")).train] == [0.0, 100.0, 200.0]


def test_csv_text_is_parse_logs_format(tmp_path):
    log = parse_log(write(tmp_path, SHORT_LOG))
    assert csv_text(log.test, log.columns(log.test)) == (
        "NumIters,Seconds,LearningRate,accuracy,loss\r\n"
        "0.0,1.0,0.01,0.0913,2.33\r\n"
        "200.0,6.1,0.00985258,0.9712,0.0921\r\n")


def test_parser_fed_line_by_line_matches_whole_file(tmp_path):
    parser = LogParser(year=2016)
    for line in FULL_LOG.splitlines()[:40]:  # part of the log: what a --follow sees mid-run
        parser.feed(line)
    partial = parser.result()
    # the row at 100 is still being written: it shows what has arrived so far
    assert [r["NumIters"] for r in partial.train] == [0.0, 50.0, 100.0]
    assert "loss" not in partial.train[-1] and partial.train[-1]["accuracy"] == 0.5
    for line in FULL_LOG.splitlines()[40:]:
        parser.feed(line)
    assert parser.result().train == parse_log(write(tmp_path, FULL_LOG)).train


def test_not_a_log_and_no_output_are_user_errors(tmp_path):
    from bnface_caffe.errors import UserError
    with pytest.raises(UserError, match="not a Caffe log"):
        caffelog.check_has_output(parse_log(write(tmp_path, "hello\nworld\n", "notes.txt")))
    setup_only = "I0210 13:39:22.381027 25210 net.cpp:51] Initializing net from parameters:\n"
    with pytest.raises(UserError, match="without training output"):
        caffelog.check_has_output(parse_log(write(tmp_path, setup_only, "setup.log")))
    with pytest.raises(UserError, match="no such file"):
        parse_log(str(tmp_path / "missing.log"))
