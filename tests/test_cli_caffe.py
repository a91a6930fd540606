"""tools/caffe.py (bnface-caffe): gflags spellings, Caffe's usage and errors, `caffe test`'s
lines against values computed here, `caffe train` logging what tools/train.py logs."""
import re

import numpy as np
import pytest

from conftest import assert_one_line_error
from solver_fixtures import make_setup
from bnface_caffe.cli import caffe as caffe_cli, gflags, train as train_cli
from bnface_caffe.errors import UserError
from bnface_caffe.formats import caffemodel
from bnface_caffe.formats.blobproto import array_to_proto
from bnface_caffe.formats.datum import encode_raw
from bnface_caffe.formats.glog import message_of
from bnface_caffe.formats.lmdb_io import LmdbWriter
from bnface_caffe.proto import caffe_pb2

FLAGS = [gflags.Flag("model", "string", "", "net"), gflags.Flag("iterations", "int32", 50, "n"),
         gflags.Flag("logtostderr", "bool", None, "b"),
         gflags.Flag("sigint_effect", "string", "stop", "s")]


# -- gflags -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["test", "-model", "m.prototxt", "-iterations", "7"],
    ["test", "-model=m.prototxt", "-iterations=7"],
    ["test", "--model", "m.prototxt", "--iterations", "7"],
    ["test", "--model=m.prototxt", "--iterations=7"],
    ["-model", "m.prototxt", "test", "--iterations=0x7"],      # flags before the command; hex
])
def test_every_gflags_spelling(argv):
    positional, values = gflags.parse(argv, FLAGS)
    assert positional == ["test"]
    assert values["model"] == "m.prototxt" and values["iterations"] == 7


def test_gflags_booleans_dashes_and_the_end_of_flags():
    parse = lambda *argv: gflags.parse(list(argv), FLAGS)      # noqa: E731
    assert parse("train")[1]["logtostderr"] is None
    assert parse("-logtostderr")[1]["logtostderr"] is True
    assert parse("--nologtostderr")[1]["logtostderr"] is False
    for word, value in [("true", True), ("Yes", True), ("1", True), ("f", False), ("NO", False)]:
        assert parse(f"-logtostderr={word}")[1]["logtostderr"] is value
    # a boolean never takes the next argument: "true" stays a positional argument
    assert parse("-logtostderr", "true") == (["true"], dict(parse()[1], logtostderr=True))
    assert parse("--sigint-effect", "none")[1]["sigint_effect"] == "none"
    assert parse("-model", "-odd-name.prototxt")[1]["model"] == "-odd-name.prototxt"
    assert parse("-model=")[1]["model"] == ""
    assert parse("train", "--", "-model", "x")[0] == ["train", "-model", "x"]
    assert parse("-iterations", "5", "-iterations", "9")[1]["iterations"] == 9


@pytest.mark.parametrize("argv,fragment", [
    (["-bogus", "1"], "unknown command line flag 'bogus'"),
    (["---model", "x"], "unknown command line flag '-model'"),
    (["-model"], "flag '-model' is missing its argument"),
    (["-iterations=3.5"], "illegal value '3.5' specified for int32 flag 'iterations'"),
    (["-iterations", "2147483648"], "int32 flag 'iterations'"),
    (["-iterations="], "int32 flag 'iterations'"),
    (["-logtostderr=maybe"], "bool flag 'logtostderr'"),
    (["-nomodel"], "-model is a string flag"),
])
def test_bad_flags(argv, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        gflags.parse(argv, FLAGS)


# -- usage and errors -----------------------------------------------------------------------
def test_no_command_prints_caffes_usage_and_exits_0(tool):
    result = tool("caffe")
    assert result.returncode == 0, result.stderr
    assert "usage: caffe.py <command> <args>" in result.stdout
    for command in ("train", "test", "device_query", "time"):
        assert re.search(rf"^  {command} +\S", result.stdout, re.M)
    assert "-solver (" in result.stdout and 'default: "stop"' in result.stdout


@pytest.mark.parametrize("args,fragments", [
    (["bogus"], ["unknown action: bogus", "device_query, test, time, train"]),
    (["train", "-bogus", "1"], ["unknown command line flag 'bogus'"]),
    (["train"], ["-solver"]),
    (["train", "solver.prototxt"], ["one command at a time", "-solver"]),
    (["train", "-solver", "missing.prototxt"], ["missing.prototxt"]),
    (["test", "-model", "m.prototxt"], ["-weights"]),
    (["time", "-model", "missing.prototxt"], ["missing.prototxt"]),
])
def test_bad_input_is_one_line_exit_2(tool, tmp_path, args, fragments):
    assert_one_line_error(tool("caffe", *args, cwd=tmp_path), *fragments)


def test_more_bad_input_raises_user_error(tmp_path):
    for argv, fragment in [(["time", "-model", "m", "-phase", "VAL"], "TRAIN or TEST"),
                           (["test", "-model", "m", "-weights", "w", "-iterations", "0"],
                            "at least 1"),
                           (["train", "-solver", "s", "-sigint_effect", "pause"],
                            "snapshot, stop or none"),
                           (["device_query", "-gpu", "0"], "CUDA device")]:
        with pytest.raises(UserError, match=fragment):
            caffe_cli.main(argv)


def test_version_and_device_query_without_gpu(capsys):
    assert caffe_cli.main(["--version"]) == 0
    assert "version 1.0.0" in capsys.readouterr().out
    assert caffe_cli.main(["device_query"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [message_of(line) for line in lines] == ["Querying GPUs "]
    assert "caffe.cpp:138]" in lines[0]


# -- caffe test -----------------------------------------------------------------------------
IMAGES = [np.array([[3, 1]], np.uint8), np.array([[0, 2]], np.uint8), np.array([[5, 5]], np.uint8)]
LABELS = [0, 1, 1]
W = np.array([[0.5, -0.25], [-0.5, 0.75]], np.float32)
B = np.array([0.1, -0.2], np.float32)
SCORER = """name: "scorer"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  data_param { source: "scores_lmdb" batch_size: 2 backend: LMDB } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss"
  loss_weight: 0.5 }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" }
"""


def make_scorer(folder):
    with LmdbWriter(str(folder / "scores_lmdb")) as db:
        for i, (image, label) in enumerate(zip(IMAGES, LABELS)):
            db.put(f"{i:08d}", encode_raw(image, label))
    (folder / "scorer.prototxt").write_text(SCORER)
    weights = caffe_pb2.NetParameter(name="scorer")
    fc = weights.layer.add(name="fc", type="InnerProduct")
    fc.blobs.extend([array_to_proto(W), array_to_proto(B)])
    caffemodel.write(weights, str(folder / "scorer.caffemodel"))


def expected_batch(indices):
    """(accuracy, loss) of one batch, from the softmax formula in float64."""
    x = np.array([IMAGES[i].ravel() for i in indices], np.float64)
    labels = np.array([LABELS[i] for i in indices])
    scores = x @ W.T.astype(np.float64) + B
    log_prob = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    return (np.mean(scores.argmax(1) == labels), -np.mean(log_prob[np.arange(len(x)), labels]))


def caffe_lines(err):
    return [(line.split("] ")[0].split()[-1], message_of(line)) for line in err.splitlines()
            if "caffe.cpp:" in line]


def close(text, value):
    return float(text) == pytest.approx(value, rel=2e-6, abs=1e-7)


def test_caffe_test_logs_each_batch_and_the_means(tmp_path, monkeypatch, capsys):
    make_scorer(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert caffe_cli.main(["test", "--model=scorer.prototxt", "-weights", "scorer.caffemodel",
                           "-iterations", "2"]) == 0
    lines = caffe_lines(capsys.readouterr().err)
    (acc0, loss0), (acc1, loss1) = expected_batch([0, 1]), expected_batch([2, 0])   # wraps
    wheres = [w for w, _ in lines]
    assert wheres == ["caffe.cpp:275", "caffe.cpp:281"] + ["caffe.cpp:304"] * 4 + \
        ["caffe.cpp:309"] + ["caffe.cpp:321"] * 2
    text = [m for _, m in lines]
    assert text[:2] == ["Use CPU.", "Running for 2 iterations."]
    batches = [re.fullmatch(r"Batch (\d), (\w+) = (\S+)", m).groups() for m in text[2:6]]
    assert [(b, name) for b, name, _ in batches] == [("0", "accuracy"), ("0", "loss"),
                                                    ("1", "accuracy"), ("1", "loss")]
    for (_, _, value), want in zip(batches, [acc0, loss0, acc1, loss1]):
        assert close(value, want)
    assert close(re.fullmatch(r"Loss: (\S+)", text[6]).group(1), 0.5 * (loss0 + loss1) / 2)
    assert close(re.fullmatch(r"accuracy = (\S+)", text[7]).group(1), (acc0 + acc1) / 2)
    mean, weight, weighted = re.fullmatch(r"loss = (\S+) \(\* (\S+) = (\S+) loss\)",
                                          text[8]).groups()
    assert close(mean, (loss0 + loss1) / 2) and weight == "0.5"
    assert close(weighted, 0.5 * (loss0 + loss1) / 2)


def test_caffe_time_logs_caffes_lines_only(tmp_path, monkeypatch, capsys):
    make_scorer(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert caffe_cli.main(["time", "-model", "scorer.prototxt", "-phase=TEST",
                           "-iterations=2"]) == 0
    err = capsys.readouterr().err
    messages = [message_of(line) for line in err.splitlines()]
    assert "Top shape: 2 1 1 2 (4)" in messages and "Top shape: 2 2 (4)" in messages
    first = [m for w, m in caffe_lines(err)][:6]
    assert re.fullmatch(r"Initial loss: [-0-9.e]+", first.pop(2))
    assert first == ["Use CPU.", "Performing Forward", "Performing Backward",
                     "*** Benchmark begins ***", "Testing for 2 iterations."]
    assert messages[-1] == "*** Benchmark ends ***"
    assert not any("as training runs it" in m for m in messages)


# -- caffe train ----------------------------------------------------------------------------
def comparable(err):
    """Log lines without prefix, timings and the prefetch thread's (unordered) lines."""
    out = []
    for line in err.splitlines():
        if "] " not in line or "data_layer.cpp:73]" in line:
            continue
        where = line.split("] ")[0].split()[-1]
        message = re.sub(r"\(\S+ iter/s, \S+s/\d+ iters\)", "(T)", message_of(line))
        out.append(f"{where}] {message}")
    return out


def test_caffe_train_logs_what_tools_train_logs(tmp_path, monkeypatch, capsys):
    solver = make_setup(tmp_path, {"max_iter": 4, "test_interval": 2, "snapshot": 0,
                                   "display": 1}, bn=False)
    monkeypatch.chdir(tmp_path)
    assert caffe_cli.main(["train", "--solver", solver, "-sigint_effect=none",
                           "-level", "0"]) == 0
    ours = comparable(capsys.readouterr().err)
    assert train_cli.main([solver, "--backend", "engine", "--sigint-effect", "none"],
                          progress_bar=False) == 0
    reference = comparable(capsys.readouterr().err)
    assert ours == reference
    assert ours[0] == "caffe.cpp:197] Use CPU." and ours[-1] == "caffe.cpp:250] Optimization Done."
    assert sum("Iteration 4, loss = " in line for line in ours) == 1
    assert (tmp_path / "snap" / "toy_iter_4.caffemodel").is_file()
