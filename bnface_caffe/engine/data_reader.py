"""Read Datum records for the Data layer: strictly in key order, wrapping around at the end.

Caffe's DataLayer keeps one LMDB cursor; each record it consumes increments an offset, and
with several solvers (GPUs) rank r keeps the records whose offset % world_size == r. After
the last record it logs "Restarting data prefetching from start." and seeks to the first.

Not in Caffe: `position()` / `seek()` save and restore where the reader is (records consumed,
the key of the next one) so a resumed run reads on from the same record; a record that
cannot be read or decoded is a BadRecord naming the LMDB and the key.
"""
import lmdb

from ..errors import UserError
from ..formats import solver_log
from ..formats.lines import line
from ..formats.glog import Glog
from ..formats.datum import datum_array, decode_batch, parse
from ..formats.lmdb_io import close_readonly, open_readonly


class BadRecord(UserError):
    """A record of the LMDB cannot be read or decoded (the message names the LMDB and key)."""


_seek_by_index = line("data_reader.py:1", "{}: record key {} is gone; moving to record {} by "
                                          "position instead", "W")


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

    def position(self):
        """(records consumed so far, hex key of the next record): what `seek` takes."""
        return self.offset, self.cursor.key().hex()

    def seek(self, offset, next_key=None):
        """Continue as if `offset` records had been consumed: at the record whose key is
        `next_key` (hex) when the LMDB still has it, else at record `offset` mod its size."""
        if offset < 0:
            raise UserError(f"{self.source}: cannot seek to record {offset}")
        found = False
        if next_key is not None:
            try:
                found = self.cursor.set_key(bytes.fromhex(next_key))
            except ValueError:
                found = False
        if not found:
            index = offset % self.num_records
            if next_key is not None:
                _seek_by_index(self.log, self.source, next_key, index)
            self.cursor.first()
            for _ in range(index):
                self.cursor.next()
        self.offset = offset
        self.restarts = offset // self.num_records

    def next_records(self, n):
        """The next n (key, value) pairs this rank reads, advancing the cursor."""
        try:
            return self._next_records(n)
        except lmdb.Error as err:
            key = self.cursor.key() if self.cursor is not None else b""
            raise BadRecord(f"{self._where(key)}: the LMDB cannot be read there ({err}); "
                            "rebuild or repair it") from None

    def _next_records(self, n):
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
        records = self.next_records(n)
        try:
            return decode_batch(records, self._where)
        except UserError as err:
            raise BadRecord(str(err)) from None

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
