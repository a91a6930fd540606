"""Read Datum records for the Data layer: strictly in key order, wrapping around at the end.

Caffe's DataLayer keeps one LMDB cursor; each record it consumes increments an offset, and
with several solvers (GPUs) rank r keeps the records whose offset % world_size == r. After
the last record it logs "Restarting data prefetching from start." and seeks to the first.
"""
from ..errors import UserError
from ..formats import solver_log
from ..formats.glog import Glog
from ..formats.datum import datum_array, decode_batch, parse
from ..formats.lmdb_io import close_readonly, open_readonly

class DatumReader:
    def __init__(self, source_path, rank=0, world_size=1, log=None):
        if not 0 <= rank < world_size:
            raise UserError(f"reader rank {rank} is outside 0..{world_size - 1}")
        self.source = str(source_path)
        self.rank, self.world_size = rank, world_size
        self.log = log if log is not None else Glog.silent()
        self.env = open_readonly(self.source)
        self.txn = self.cursor = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self):
        self.num_records = self.env.stat()["entries"]
        if self.num_records == 0:
            raise UserError(f"{self.source}: the LMDB holds no records")
        self.txn = self.env.begin(buffers=False)
        self.cursor = self.txn.cursor()
        self.cursor.first()
        self.offset = 0          # records consumed so far, across wraps (Caffe's offset_)
        self.restarts = 0
        # Setup peeks at the first record for the shape without moving the cursor.
        where = self._where(self.cursor.key())
        first = parse(self.cursor.value(), where)
        self.datum_shape = tuple(datum_array(first, where).shape)

    def __len__(self):
        return self.num_records

    def _where(self, key):
        return f"{self.source} record {key.decode(errors='replace')!r}"

    def _next(self):
        self.offset += 1
        if not self.cursor.next():
            self._restart()

    def _restart(self):
        if self.rank == 0:  # Caffe logs on the root solver only
            solver_log.restarting_data(self.log)
        self.restarts += 1
        self.cursor.first()

    def next_records(self, n):
        """The next n (key, value) pairs this rank reads, advancing the cursor."""
        out = []
        cursor = self.cursor
        if self.world_size == 1:  # the hot path: no skipping, no per-record method calls
            for _ in range(n):
                out.append((cursor.key(), cursor.value()))
                self.offset += 1
                if not cursor.next():
                    self._restart()
            return out
        for _ in range(n):
            while self.offset % self.world_size != self.rank:
                self._next()
            out.append((cursor.key(), cursor.value()))
            self._next()
        return out

    def next_batch(self, n):
        """(images [n,C,H,W] uint8, or float32 for float_data records; labels int32 [n])."""
        return decode_batch(self.next_records(n), self._where)

    def close(self):
        if self.env is not None:
            if self.cursor is not None:
                self.cursor.close()
            if self.txn is not None:
                self.txn.abort()
            close_readonly(self.env)
            self.env = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
