"""Write an LMDB of (key, value) records the way Caffe's db_lmdb does: commit in chunks and
double the map size whenever it is full (no fixed terabyte reservation that fails on small
disks). Opening for reading turns every failure into a one-line UserError."""
import os
import threading

import lmdb

from ..errors import UserError

COMMIT_EVERY = 1000          # convert_imageset commits every 1000 records
INITIAL_MAP_SIZE = 1 << 24   # 16 MiB; doubled on demand


class LmdbWriter:
    """`put` records in key order; every `commit_every` records one transaction is committed.

    A full map aborts the pending transaction, doubles the map size and replays it, so the
    database only ever holds whole chunks.
    """

    def __init__(self, path, map_size=INITIAL_MAP_SIZE, commit_every=COMMIT_EVERY):
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.env = lmdb.open(path, map_size=map_size, subdir=True, meminit=False,
                             max_dbs=0, lock=True)
        self.commit_every = commit_every
        self.pending = []
        self.count = 0
        self.resizes = 0

    @property
    def map_size(self):
        return self.env.info()["map_size"]

    def put(self, key, value):
        self.pending.append((key.encode() if isinstance(key, str) else key, value))
        self.count += 1
        if len(self.pending) >= self.commit_every:
            self.commit()

    def commit(self):
        while self.pending:
            try:
                with self.env.begin(write=True) as txn:
                    with txn.cursor() as cursor:
                        # append=True: keys arrive sorted (zero-padded index first), which
                        # lets LMDB fill pages sequentially; an out-of-order key raises.
                        _, added = cursor.putmulti(self.pending, append=True)
                        if added != len(self.pending):
                            raise ValueError(f"{self.path}: {len(self.pending) - added} keys "
                                             "not in increasing order (or duplicated)")
                self.pending = []
            except lmdb.MapFullError:
                self.env.set_mapsize(self.map_size * 2)
                self.resizes += 1

    def close(self):
        try:
            self.commit()
            self.env.sync(True)
        finally:
            self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:  # leave the half-built database to the caller's clean-up; just release it
            self.env.close()


_shared = {}                  # realpath -> [env, users]: py-lmdb allows one env per process
_shared_lock = threading.Lock()


def open_readonly(path):
    """Open an existing LMDB folder for reading (as Caffe does: read-only, no lock). Readers of
    the same folder in one process share the environment; give it back with close_readonly."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such LMDB (folder not found); build one with "
                        "tools/build_lmdb.py or fix data_param.source")
    if not os.path.isdir(path):
        raise UserError(f"{path}: is a file; a Caffe LMDB is a folder holding data.mdb")
    if not os.path.isfile(os.path.join(path, "data.mdb")):
        raise UserError(f"{path}: not an LMDB (no data.mdb inside); is this the right folder?")
    key = os.path.realpath(path)
    with _shared_lock:
        if key in _shared:
            _shared[key][1] += 1
            return _shared[key][0]
        try:
            env = lmdb.open(path, readonly=True, lock=False, subdir=True, max_readers=512)
        except lmdb.Error as err:
            raise UserError(f"{path}: cannot open as LMDB ({err})") from None
        _shared[key] = [env, 1]
        return env


def close_readonly(env):
    with _shared_lock:
        for key, entry in list(_shared.items()):
            if entry[0] is env:
                entry[1] -= 1
                if entry[1] == 0:
                    del _shared[key]
                    env.close()
                return
