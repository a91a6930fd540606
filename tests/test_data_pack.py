"""Record writing as convert_imageset: "%08d_<path>" keys in list order, Datum values."""
import lmdb
import numpy as np

from bnface_caffe.data import pack
from bnface_caffe.proto import caffe_pb2


def test_record_key_format():
    assert pack.record_key(0, "a b/c.jpg") == "00000000_a b/c.jpg"
    assert pack.record_key(12345678, "x") == "12345678_x"


def test_write_lmdb_follows_the_given_order(tmp_path):
    store = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    paths, labels = ["p/0.png", "p/1.png", "q/2.png", "q/3.png"], [0, 0, 1, 1]
    order = [2, 0, 3]
    pack.write_lmdb(str(tmp_path / "db"), order, paths, labels, store)
    env = lmdb.open(str(tmp_path / "db"), readonly=True, lock=False)
    with env.begin() as txn:
        got = [(k.decode(), caffe_pb2.Datum.FromString(v)) for k, v in txn.cursor()]
    env.close()
    assert [k for k, _ in got] == ["00000000_q/2.png", "00000001_p/0.png", "00000002_q/3.png"]
    assert [d.label for _, d in got] == [1, 0, 1]
    assert got[0][1].data == store[2].tobytes()
    pack.write_listfile(str(tmp_path / "list.txt"), order, paths, labels)
    assert (tmp_path / "list.txt").read_text() == "q/2.png 1\np/0.png 0\nq/3.png 1\n"


def test_map_size_estimate_is_modest():
    assert pack.estimated_map_size(0, 2500) == 1 << 20
    assert pack.estimated_map_size(9000, 2500) < 64 << 20
