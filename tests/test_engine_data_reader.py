"""DatumReader: key order, wraparound with Caffe's log line, rank striding, all record kinds."""
import io

import lmdb
import numpy as np
import pytest

from bnface_caffe.formats import glog
from bnface_caffe.formats import datum
from bnface_caffe.formats.lmdb_io import LmdbWriter
from bnface_caffe.engine.data_reader import DatumReader
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


def make_lmdb(path, values):
    with LmdbWriter(str(path)) as writer:
        for i, value in enumerate(values):
            writer.put(f"{i:08d}_img{i}.png", value)
    return str(path)


def gray(i, size=4):
    return np.full((size, size), i, np.uint8)


@pytest.fixture
def captured_log():
    """A Glog writing into a string buffer; `.out` holds the text."""
    log = glog.Glog(stderr=False)
    log.out = io.StringIO()
    log.sinks.append(log.out)
    return log


def test_key_order_wraparound_and_restart_line(tmp_path, captured_log):
    # Insert in one order; LMDB sorts by key, and the reader must follow the keys.
    path = str(tmp_path / "db")
    env = lmdb.open(path, map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i in (3, 0, 4, 1, 2):
            txn.put(f"{i:08d}_x".encode(), datum.encode_raw(gray(i * 10), i))
    env.close()
    reader = DatumReader(path, log=captured_log)
    assert reader.datum_shape == (1, 4, 4) and len(reader) == 5
    images, labels = reader.next_batch(3)
    assert labels.tolist() == [0, 1, 2] and labels.dtype == np.int32
    assert images.dtype == np.uint8 and images.shape == (3, 1, 4, 4)
    assert images[:, 0, 0, 0].tolist() == [0, 10, 20]
    assert captured_log.out.getvalue() == ""
    images, labels = reader.next_batch(4)
    assert labels.tolist() == [3, 4, 0, 1]
    lines = captured_log.out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("I")
    assert lines[0].endswith("data_layer.cpp:73] Restarting data prefetching from start.")
    reader.close()


def test_datum_shape_peek_does_not_move_the_cursor(tmp_path):
    path = make_lmdb(tmp_path / "db", [datum.encode_raw(gray(i), i) for i in range(3)])
    reader = DatumReader(path)
    assert reader.datum_shape == (1, 4, 4)
    assert reader.next_batch(1)[1].tolist() == [0]


def test_rank_striding_follows_caffes_offset_rule_across_the_wrap(tmp_path, captured_log):
    path = make_lmdb(tmp_path / "db", [datum.encode_raw(gray(i), i) for i in range(5)])
    # offset_ counts every record consumed (wraps included); rank r keeps offset % W == r.
    offsets = range(0, 20)
    for rank in range(2):
        reader = DatumReader(path, rank=rank, world_size=2, log=captured_log)
        expected = [o % 5 for o in offsets if o % 2 == rank][:6]
        assert reader.next_batch(6)[1].tolist() == expected
        assert reader.restarts == 2  # offsets 0..11 pass the end of 5 records twice
        reader.close()
    # Only the root solver (rank 0) logs the restarts.
    assert captured_log.out.getvalue().count("Restarting") == 2


def test_encoded_and_float_records(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 6, 6), dtype=np.uint8)
    path = make_lmdb(tmp_path / "enc", [datum.encode_compressed(im, i, "png")
                                        for i, im in enumerate(images)])
    reader = DatumReader(path)
    assert reader.datum_shape == (1, 6, 6)
    batch, labels = reader.next_batch(3)
    assert batch.dtype == np.uint8 and labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(batch[:, 0], images)
    floats = []
    for i in range(2):
        d = caffe_pb2.Datum(channels=1, height=2, width=2, label=i)
        d.float_data.extend([i + 0.25] * 4)
        floats.append(d.SerializeToString())
    batch, labels = DatumReader(make_lmdb(tmp_path / "flt", floats)).next_batch(2)
    assert batch.dtype == np.float32 and batch[1, 0, 1, 1] == 1.25


def test_mismatched_sizes_and_bad_inputs_are_user_errors(tmp_path):
    path = make_lmdb(tmp_path / "db", [datum.encode_raw(gray(0, 4), 0),
                                       datum.encode_raw(gray(0, 5), 1)])
    with pytest.raises(UserError, match="00000001_img1.png.*first record"):
        DatumReader(path).next_batch(2)
    with pytest.raises(UserError, match="no such LMDB"):
        DatumReader(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="not a serialized caffe.Datum"):
        DatumReader(make_lmdb(tmp_path / "junk", [b"\xff\xff\xff"]))
    empty = tmp_path / "empty"
    LmdbWriter(str(empty)).close()
    with pytest.raises(UserError, match="holds no records"):
        DatumReader(str(empty))
    with pytest.raises(UserError, match="rank 2"):
        DatumReader(path, rank=2, world_size=2)


def test_two_readers_of_one_lmdb_in_one_process(tmp_path):
    # py-lmdb refuses a second environment for one folder; readers must share it.
    path = make_lmdb(tmp_path / "db", [datum.encode_raw(gray(i), i) for i in range(4)])
    a, b = DatumReader(path), DatumReader(path, rank=1, world_size=2)
    assert a.next_batch(2)[1].tolist() == [0, 1] and b.next_batch(2)[1].tolist() == [1, 3]
    a.close()
    assert b.next_batch(1)[1].tolist() == [1]  # still usable after the other one closed
    b.close()
    with DatumReader(path) as c:
        assert c.next_batch(1)[1].tolist() == [0]
