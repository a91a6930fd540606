"""ImageData, HDF5Data, HDF5Output, MemoryData, DummyData and the WindowData refusal,
on real files written here (PNG/JPEG through OpenCV, .h5 through h5py)."""
import ctypes
import ctypes.util
import os
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
import torch

from bnface_caffe.cli import time_net
from bnface_caffe.engine import Net, crand
from bnface_caffe.engine.crand import CRand
from bnface_caffe.engine.layers.image_data import atoi
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, messages, net_param

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def build(text, phase=TRAIN, seed=0):
    torch.manual_seed(seed)
    logger, buffer = captured_log()
    return Net(net_param(text), phase=phase, logger=logger), messages(buffer)


@pytest.fixture
def images(tmp_path):
    """Six 4x5 BGR PNGs whose pixels say which image they are, and a listfile."""
    folder = tmp_path / "img"
    folder.mkdir()
    arrays = []
    for i in range(6):
        a = (np.arange(60).reshape(4, 5, 3) + 30 * i).astype(np.uint8)
        cv2.imwrite(str(folder / f"im {i}.png"), a)       # a space in the name
        arrays.append(a)
    (tmp_path / "list.txt").write_text("".join(f"im {i}.png {10 + i}\n" for i in range(6)))
    return tmp_path, arrays


def image_net(tmp_path, extra="", transform="", batch=4):
    return f"""
layer {{ name: "data" type: "ImageData" top: "data" top: "label" {transform}
  image_data_param {{ source: "{tmp_path}/list.txt" root_folder: "{tmp_path}/img/"
                      batch_size: {batch} {extra} }} }}
"""


def chw(a):
    return a.transpose(2, 0, 1).astype(np.float32)


# ---------------------------------------------------------------- ImageData

def test_image_data_reads_in_order_wraps_and_logs(images):
    tmp_path, arrays = images
    net, lines = build(image_net(tmp_path))
    assert net.shapes["data"] == (4, 3, 4, 5) and net.shapes["label"] == (4,)
    assert f"Opening file {tmp_path}/list.txt" in lines
    assert "A total of 6 images." in lines and "output data size: 4,3,4,5" in lines
    net.forward()
    np.testing.assert_array_equal(net.blob("data"), np.stack([chw(a) for a in arrays[:4]]))
    assert net.blob("label").tolist() == [10, 11, 12, 13]
    net.forward()                                   # 4, 5, then from the start
    assert net.blob("label").tolist() == [14, 15, 10, 11]
    np.testing.assert_array_equal(net.blob("data")[2], chw(arrays[0]))
    net.close()


def test_image_data_gray_resize_transform_and_jpeg(images):
    tmp_path, arrays = images
    cv2.imwrite(str(tmp_path / "img" / "j.jpg"), arrays[0])
    (tmp_path / "list.txt").write_text("j.jpg 1\nim 1.png 2\n")
    net, _ = build(image_net(tmp_path, "is_color: false new_height: 6 new_width: 8", batch=2,
                             transform="transform_param { scale: 0.5 mean_value: 100 }"))
    assert net.shapes["data"] == (2, 1, 6, 8)
    net.forward()
    gray = cv2.imread(str(tmp_path / "img" / "j.jpg"), cv2.IMREAD_GRAYSCALE)
    want = (cv2.resize(gray, (8, 6)).astype(np.float32) - 100) * 0.5
    np.testing.assert_array_equal(net.blob("data")[0, 0], want)
    net.close()
    # TEST-phase crop is centred: rows 1..2, columns 1..3 of the 4x5 image
    (tmp_path / "list.txt").write_text("im 1.png 2\n")
    net, _ = build(image_net(tmp_path, batch=1, transform="transform_param { crop_size: 2 }"),
                   phase=TEST)
    net.forward()
    np.testing.assert_array_equal(net.blob("data")[0], chw(arrays[1])[:, 1:3, 1:3])
    net.close()


def epoch_orders(tmp_path, extra, seed, batches):
    net, lines = build(image_net(tmp_path, extra, batch=3), seed=seed)
    labels = []
    for _ in range(batches):
        net.forward()
        labels += [int(v) for v in net.blob("label")]
    net.close()
    return labels, lines


def test_image_data_shuffle_is_seeded_and_reshuffles_each_pass(images):
    tmp_path, _ = images
    a, lines = epoch_orders(tmp_path, "shuffle: true", seed=1, batches=4)
    b, _ = epoch_orders(tmp_path, "shuffle: true", seed=1, batches=4)
    c, _ = epoch_orders(tmp_path, "shuffle: true", seed=2, batches=4)
    assert "Shuffling data" in lines
    assert a == b and a != c
    assert sorted(a[:6]) == sorted(a[6:]) == list(range(10, 16))   # each pass: every image once
    assert a[:6] != a[6:] or c[:6] != c[6:]                         # ... reshuffled at its end


def test_image_data_rand_skip(images):
    tmp_path, _ = images
    starts = set()
    for seed in range(8):
        labels, lines = epoch_orders(tmp_path, "rand_skip: 5", seed=seed, batches=1)
        skip = [m for m in lines if m.startswith("Skipping first ")]
        assert len(skip) == 1
        k = int(skip[0].split()[2])
        assert 0 <= k < 5 and labels == [10 + (k + j) % 6 for j in range(3)]
        starts.add(k)
    assert len(starts) > 1


def test_image_data_errors_are_one_line(images, tmp_path):
    tmp, _ = images
    with pytest.raises(UserError, match="new_height and new_width must be set together"):
        build(image_net(tmp, "new_height: 4"))
    with pytest.raises(UserError, match="cannot read the listfile"):
        build(image_net(tmp).replace("list.txt", "nope.txt"))
    (tmp / "list.txt").write_text("")
    with pytest.raises(UserError, match="'data' \\(ImageData\\): the listfile .* is empty"):
        build(image_net(tmp))
    (tmp / "list.txt").write_text("im 0.png 1\nmissing.png 2\n")
    net, _ = build(image_net(tmp, batch=2))
    with pytest.raises(UserError, match="could not load .*missing.png \\(line 2 of"):
        net.forward()
    net.close()
    cv2.imwrite(str(tmp / "img" / "big.png"), np.zeros((6, 6, 3), np.uint8))
    (tmp / "list.txt").write_text("im 0.png 1\nbig.png 2\n")
    net, _ = build(image_net(tmp, batch=2))
    with pytest.raises(UserError, match="big.png \\(line 2\\) is 3 6 6.*share one size"):
        net.forward()
    net.close()


def test_atoi_reads_labels_like_c():
    assert [atoi(s) for s in ["7", " 12\r", "-3", "+4x", "x", "", "08"]] == [7, 12, -3, 4, 0, 0, 8]


def test_window_data_is_refused_in_one_line():
    with pytest.raises(UserError, match="WindowData \\(R-CNN window files\\) is not supported"):
        build('layer { name: "w" type: "WindowData" top: "data" top: "label" }')


# ---------------------------------------------------------------- HDF5Data

def write_h5(path, data, label):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("label", data=label)


@pytest.fixture
def h5files(tmp_path):
    a = np.arange(30, dtype=np.float64).reshape(5, 2, 3) / 7      # doubles, read as float
    b = 100 + np.arange(18, dtype=np.float32).reshape(3, 2, 3)
    write_h5(tmp_path / "a.h5", a, np.arange(5, dtype=np.int32))   # integer labels
    write_h5(tmp_path / "b.h5", b, np.arange(10, 13, dtype=np.int32))
    (tmp_path / "files.txt").write_text(f"{tmp_path}/a.h5\n  {tmp_path}/b.h5 \n")
    return tmp_path, np.concatenate([a, b]).astype(np.float32), np.arange(5).tolist() + [10, 11, 12]


def h5_net(tmp_path, extra="", batch=3):
    return f"""
layer {{ name: "h5" type: "HDF5Data" top: "data" top: "label"
  hdf5_data_param {{ source: "{tmp_path}/files.txt" batch_size: {batch} {extra} }} }}
"""


def test_hdf5_data_reads_rows_across_files_and_wraps(h5files):
    tmp_path, rows, labels = h5files
    net, lines = build(h5_net(tmp_path))
    assert net.shapes == {"data": (3, 2, 3), "label": (3,)}
    assert f"Loading list of HDF5 filenames from: {tmp_path}/files.txt" in lines
    assert "Number of HDF5 files: 2" in lines
    seen_data, seen_labels = [], []
    for _ in range(4):                           # 12 rows: a (5), b (3), a (4 of 5)
        net.forward()
        seen_data.append(net.blob("data"))
        seen_labels += net.blob("label").tolist()
    order = list(range(8)) + list(range(4))
    assert seen_labels == [labels[i] for i in order]
    np.testing.assert_array_equal(np.concatenate(seen_data), rows[order])


def test_hdf5_data_shuffle_is_caffes_rand_stream(h5files):
    """With shuffle, Caffe permutes with std::random_shuffle on rand(), which it never
    seeds: the expected order is worked out here from glibc's stream, seed 1."""
    tmp_path, rows, labels = h5files
    crand.C_RAND.seed(1)                          # a fresh process
    net, _ = build(h5_net(tmp_path, "shuffle: true", batch=8))
    net.forward()
    got = net.blob("label").tolist()
    r = CRand(1)

    def random_shuffle(items):                    # libstdc++'s loop
        for i in range(1, len(items)):
            j = r.rand() % (i + 1)
            items[i], items[j] = items[j], items[i]
        return items

    files = random_shuffle([0, 1])
    per_file = {0: labels[:5], 1: labels[5:]}
    want = []
    first = random_shuffle(list(range(len(per_file[files[0]]))))     # loading file 1
    want += [per_file[files[0]][i] for i in first]
    second = random_shuffle(list(range(len(per_file[files[1]]))))    # loading file 2
    random_shuffle(second)                                            # ... and its rows again
    want += [per_file[files[1]][i] for i in second]
    assert got == want[:8]


def test_hdf5_data_skips_rows_of_other_ranks_in_train(h5files):
    tmp_path, _, labels = h5files
    torch.manual_seed(0)
    logger, _ = captured_log()
    net = Net(net_param(h5_net(tmp_path, batch=3)), rank=1, world_size=2, logger=logger)
    net.forward()
    assert net.blob("label").tolist() == [labels[1], labels[3], labels[5]]
    net = Net(net_param(h5_net(tmp_path, batch=3)), phase=TEST, rank=1, world_size=2,
              logger=logger)
    net.forward()
    assert net.blob("label").tolist() == labels[:3]


def test_hdf5_data_errors_are_one_line(h5files):
    tmp_path, _, _ = h5files
    with pytest.raises(UserError, match="HDF5Data does not transform data"):
        build(h5_net(tmp_path).replace('top: "label"', 'top: "label" transform_param { scale: 2 }'))
    with pytest.raises(UserError, match="failed to open source file"):
        build(h5_net(tmp_path).replace("files.txt", "none.txt"))
    (tmp_path / "files.txt").write_text("")
    with pytest.raises(UserError, match="at least 1 HDF5 filename"):
        build(h5_net(tmp_path))
    (tmp_path / "files.txt").write_text(f"{tmp_path}/a.h5\n")
    with pytest.raises(UserError, match="no HDF5 dataset 'other'"):
        build(h5_net(tmp_path).replace('top: "label"', 'top: "other"'))
    write_h5(tmp_path / "c.h5", np.zeros((4, 2)), np.zeros(3))
    (tmp_path / "files.txt").write_text(f"{tmp_path}/c.h5\n")
    with pytest.raises(UserError, match="'label' has 3 rows, 'data' has 4"):
        build(h5_net(tmp_path))
    (tmp_path / "files.txt").write_text(f"{tmp_path}/missing.h5\n")
    with pytest.raises(UserError, match="failed opening HDF5 file .*missing.h5"):
        build(h5_net(tmp_path))


# ---------------------------------------------------------------- HDF5Output

def test_hdf5_output_writes_one_batch_as_4d_blobs(tmp_path):
    out = tmp_path / "out.h5"
    net, lines = build(f"""
layer {{ name: "in" type: "Input" top: "x" top: "y"
  input_param {{ shape {{ dim: 2 dim: 3 }} shape {{ dim: 2 }} }} }}
layer {{ name: "save" type: "HDF5Output" bottom: "x" bottom: "y"
  hdf5_output_param {{ file_name: "{out}" }} }}
""")
    with h5py.File(out, "r") as f:                  # created (empty) at set-up
        assert list(f) == []
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    net.set_input("x", x)
    net.set_input("y", np.array([4, 5], np.float32))
    logger, buffer = captured_log()
    net.nodes[1].layer.log = logger
    net.forward()
    assert messages(buffer) == [f"Saving HDF5 file {out}", "Successfully saved 2 rows"]
    with h5py.File(out, "r") as f:
        assert f["data"].shape == (2, 3, 1, 1) and f["data"].dtype == np.float32
        np.testing.assert_array_equal(f["data"][()].reshape(2, 3), x)
        assert f["label"][()].reshape(-1).tolist() == [4, 5] and f["label"].shape == (2, 1, 1, 1)
    with pytest.raises(UserError, match="writes one batch per file"):
        net.forward()


# ---------------------------------------------------------------- MemoryData

MEMORY = """
layer { name: "mem" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


def test_memory_data_serves_the_arrays_in_batches():
    net, _ = build(MEMORY)
    assert net.shapes["data"] == (2, 1, 2, 3) and net.shapes["label"] == (2,)
    with pytest.raises(UserError, match="needs its arrays first"):
        net.forward()
    data = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
    labels = np.array([0, 1, 2, 0], np.float32)
    net.set_input_arrays(data, labels)
    net.forward_backward()
    np.testing.assert_array_equal(net.blob("data"), data[:2])
    assert net.blob("label").shape == (2, 1, 1, 1)          # Caffe reshapes it in Forward
    net.forward()
    assert net.blob("label").reshape(-1).tolist() == [2, 0]
    data[0, 0, 0, 0] = -1.0                                   # shared, not copied
    net.forward()
    assert net.blob("data")[0, 0, 0, 0] == -1.0


@pytest.mark.parametrize("data,labels,message", [
    (np.zeros((4, 1, 2, 3)), np.zeros(4), "data array must be float32"),
    (np.zeros((4, 2, 2, 3), np.float32), np.zeros(4, np.float32), "wrong number of channels"),
    (np.zeros((4, 1, 2, 3), np.float32)[:, :, :, ::-1], np.zeros(4, np.float32), "C contiguous"),
    (np.zeros((3, 1, 2, 3), np.float32), np.zeros(3, np.float32), "multiple of batch size"),
    (np.zeros((4, 1, 2, 3), np.float32), np.zeros(2, np.float32), "same first dimension"),
    (np.zeros((4, 6), np.float32), np.zeros(4, np.float32), "must be 4-d"),
])
def test_memory_data_checks_the_arrays_as_pycaffe(data, labels, message):
    net, _ = build(MEMORY)
    with pytest.raises(UserError, match=f"'mem' \\(MemoryData\\): .*{message}"):
        net.set_input_arrays(data, labels)


def test_memory_data_set_up_checks_and_first_layer_rule():
    with pytest.raises(UserError, match="must be specified and positive"):
        build('layer { name: "mem" type: "MemoryData" top: "d" top: "l" '
              'memory_data_param { batch_size: 2 channels: 1 height: 2 } }')
    net, _ = build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }')
    with pytest.raises(UserError, match="first layer is a MemoryData layer"):
        net.set_input_arrays(np.zeros((1, 1, 1, 1), np.float32), np.zeros(1, np.float32))


# ---------------------------------------------------------------- DummyData

def test_dummy_data_shapes_fillers_and_refills():
    net, _ = build("""
layer { name: "d" type: "DummyData" top: "a" top: "b" top: "c"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 4 } shape { dim: 1 dim: 1 dim: 2 }
    data_filler { type: "constant" value: 1.5 } data_filler { type: "gaussian" std: 1 }
    data_filler { type: "uniform" min: 2 max: 3 } } }
""")
    assert [net.shapes[b] for b in "abc"] == [(2, 3), (4,), (1, 1, 2)]
    net.forward()
    first = {b: net.blob(b).copy() for b in "abc"}
    net.forward()
    assert (first["a"] == 1.5).all() and (net.blob("a") == 1.5).all()
    assert not np.array_equal(first["b"], net.blob("b"))          # refilled every forward
    assert ((2 <= net.blob("c")) & (net.blob("c") <= 3)).all()
    net, _ = build('layer { name: "d" type: "DummyData" top: "a" top: "b" '
                   'dummy_data_param { num: 2 channels: 3 channels: 1 height: 4 width: 5 } }')
    assert [net.shapes[b] for b in "ab"] == [(2, 3, 4, 5), (2, 1, 4, 5)]
    net.forward()
    assert not net.blob("a").any()                                  # no filler: constant 0


@pytest.mark.parametrize("param,message", [
    ("shape { dim: 2 } num: 2 channels: 1 height: 1 width: 1", "both shape and legacy"),
    ("num: 2 num: 2 num: 2 channels: 1 height: 1 width: 1", "'num' once, or once per top"),
    ("shape { dim: 1 } shape { dim: 1 } shape { dim: 1 }", "'shape' once, or once per top"),
    ("shape { dim: 1 } data_filler { } data_filler { } data_filler { }",
     "number of data fillers must be 0, 1 or equal"),
])
def test_dummy_data_errors(param, message):
    with pytest.raises(UserError, match=message):
        build(f'layer {{ name: "d" type: "DummyData" top: "a" top: "b" '
              f'dummy_data_param {{ {param} }} }}')


# ---------------------------------------------------------------- tools and the rand stream

def test_time_net_prints_top_shapes_for_the_data_layers(images, h5files, capsys):
    tmp_path, _ = images
    text = image_net(tmp_path, batch=2).replace(
        'top: "data" top: "label"', 'top: "data2" top: "label2"') + h5_net(tmp_path, batch=2) + """
layer { name: "dummy" type: "DummyData" top: "noise" dummy_data_param { shape { dim: 2 dim: 6 }
  data_filler { type: "gaussian" } } }
layer { name: "silence" type: "Silence" bottom: "label" bottom: "label2" bottom: "noise"
  bottom: "data2" bottom: "data" }
"""
    path = tmp_path / "data_net.prototxt"
    path.write_text(text)
    assert time_net.main([str(path), "--iterations", "1"]) == 0
    err = capsys.readouterr().err
    shapes = [line.split("] ", 1)[1] for line in err.splitlines() if "] Top shape:" in line]
    assert shapes == ["Top shape: 2 3 4 5 (120)", "Top shape: 2 (2)",
                      "Top shape: 2 2 3 (12)", "Top shape: 2 (2)", "Top shape: 2 6 (12)"]


def test_crand_equals_the_c_librarys_rand_in_a_fresh_process():
    first = CRand()
    assert [first.rand() for _ in range(3)] == [1804289383, 846930886, 1681692777]
    if ctypes.util.find_library("c") is None or sys.platform != "linux":
        pytest.skip("glibc's rand() is the reference")
    code = ("import ctypes, ctypes.util; c = ctypes.CDLL(ctypes.util.find_library('c')); "
            "print([c.rand() for _ in range(400)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONHASHSEED="0"))
    reference = CRand()
    assert eval(out.stdout) == [reference.rand() for _ in range(400)]
