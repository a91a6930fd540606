"""LMDB writer: chunked commits, map size that doubles on demand; read-side errors."""
import lmdb
import pytest

from bnface_caffe.formats import lmdb_io
from bnface_caffe.errors import UserError


def test_map_grows_from_a_tiny_reservation_and_keeps_every_record(tmp_path):
    path = str(tmp_path / "db")
    value = bytes(range(256)) * 10  # 2560 bytes, about one 50x50 record
    with lmdb_io.LmdbWriter(path, map_size=64 * 1024, commit_every=100) as writer:
        for i in range(1000):
            writer.put(f"{i:08d}_x", value)
    assert writer.resizes >= 5  # 64 KiB could not hold 2.5 MB: it doubled several times
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        keys = [k for k, _ in txn.cursor()]
        assert txn.get(b"00000999_x") == value
    assert keys == [f"{i:08d}_x".encode() for i in range(1000)]
    assert env.info()["map_size"] < 64 * 1024 * 1024  # no terabyte reservation
    env.close()


def test_commits_in_chunks(tmp_path):
    path = str(tmp_path / "db")
    writer = lmdb_io.LmdbWriter(path, commit_every=3)
    for i in range(7):
        writer.put(f"{i:08d}", b"v")
    # Two chunks of 3 committed, one record pending: a reader sees 6 already.
    with writer.env.begin() as txn:
        assert txn.stat()["entries"] == 6
    writer.close()
    with lmdb.open(path, readonly=True, lock=False) as env:
        assert env.stat()["entries"] == 7


def test_out_of_order_keys_are_refused_not_dropped(tmp_path):
    writer = lmdb_io.LmdbWriter(str(tmp_path / "db"))
    writer.put("00000002_b", b"1")
    writer.put("00000001_a", b"2")
    with pytest.raises(ValueError, match="not in increasing order"):
        writer.close()


def test_open_readonly_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no such LMDB"):
        lmdb_io.open_readonly(str(tmp_path / "missing"))
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        lmdb_io.open_readonly(str(a_file))
    with pytest.raises(UserError, match="no data.mdb"):
        lmdb_io.open_readonly(str(tmp_path))
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "data.mdb").write_bytes(b"this is not an lmdb file" * 300)
    with pytest.raises(UserError, match="cannot open as LMDB"):
        lmdb_io.open_readonly(str(fake))
