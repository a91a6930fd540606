"""HDF5Data (hdf5_data_layer.cpp) and HDF5Output (hdf5_output_layer.cpp).

HDF5Data: `source` lists .h5 files (whitespace-separated paths, relative to where the
net runs); each top is the dataset of the same name at the root of the current file,
read as float32 (any float or integer type), all with the same number of rows. Tops
are (batch_size, *dataset.shape[1:]). Rows are served in order, moving to the next
file at each file's end; `shuffle` permutes the files at set-up and at every pass, and
the rows of each file when it is loaded and at its end, with std::random_shuffle on
the C library's rand() exactly as Caffe does (engine/crand.py): Caffe never seeds that
stream, so its order does not depend on random_seed, and ours is the same as Caffe's.
In multi-GPU training each rank takes every world_size-th row (Caffe's Skip()).

HDF5Output: creates (truncates) `file_name` at set-up; a forward writes its two bottoms
as float32 datasets "data" and "label" shaped num x channels x height x width. Caffe's
layer can write only one batch per file (the second forward fails there); here the
second forward is a one-line error.
"""
import os

import numpy as np
import torch

from ...formats import hdf5
from ...proto import caffe_pb2
from ...shapes import shape_string
from ..crand import C_RAND
from .base import Layer, register


@register
class HDF5Data(Layer):
    type = "HDF5Data"
    bottoms = (0, 0)
    tops = (1, None)
    rank = 0          # set by Net for multi-GPU training
    world_size = 1

    def setup(self, bottom_shapes):
        p = self.param.hdf5_data_param
        if self.param.HasField("transform_param"):
            raise self.error("HDF5Data does not transform data; remove transform_param "
                             "(store the data already scaled)")
        self.log.info("hdf5_data_layer.cpp:81", f"Loading list of HDF5 filenames from: {p.source}")
        try:
            with open(p.source) as f:
                self.filenames = f.read().split()
        except OSError as err:
            raise self.error(f"failed to open source file {p.source} ({err.strerror}); "
                             "hdf5_data_param { source } names a text file listing .h5 files")
        self.log.info("hdf5_data_layer.cpp:95", f"Number of HDF5 files: {len(self.filenames)}")
        if not self.filenames:
            raise self.error(f"must have at least 1 HDF5 filename listed in {p.source}")
        self.shuffle = p.shuffle
        self.batch_size = int(p.batch_size)
        if self.batch_size <= 0:
            raise self.error("hdf5_data_param { batch_size } must be positive")
        self.file_order = list(range(len(self.filenames)))
        if self.shuffle:
            C_RAND.random_shuffle(self.file_order)
        self.current_file = 0
        self._load(self.filenames[self.file_order[0]])
        self.current_row = 0
        self.offset = 0
        self.row_shapes = [tuple(b.shape[1:]) for b in self.blobs_in_file]

    def _load(self, filename):
        """LoadHDF5FileData: every top's dataset, and the row permutation."""
        where = f"layer '{self.name}' (HDF5Data)"
        if not os.path.isfile(filename):
            raise self.error(f"failed opening HDF5 file {filename} (listed in "
                             f"{self.param.hdf5_data_param.source})")
        with hdf5.open_file(filename, "r", f"listed by {where}") as f:
            blobs = [hdf5.load_dataset(f, name, f"{where}, file {filename}", self.log, 1,
                                       2**31 - 1)
                     for name in self.param.top]
        rows = blobs[0].shape[0]
        for name, b in zip(self.param.top, blobs):
            if b.shape[0] != rows:
                raise self.error(f"{filename}: dataset '{name}' has {b.shape[0]} rows, "
                                 f"'{self.param.top[0]}' has {rows}; all must have as many")
        if rows == 0:
            raise self.error(f"{filename}: the datasets have no rows")
        if getattr(self, "row_shapes", None) is not None:
            for name, b, shape in zip(self.param.top, blobs, self.row_shapes):
                if tuple(b.shape[1:]) != shape:
                    raise self.error(f"{filename}: dataset '{name}' rows are "
                                     f"{shape_string(b.shape[1:])}, the first file's "
                                     f"{shape_string(shape)}; every file must match")
        self.blobs_in_file = blobs
        self.row_order = list(range(rows))
        if self.shuffle:
            C_RAND.random_shuffle(self.row_order)

    def _skip(self):
        keep = self.offset % self.world_size == self.rank or self.phase == caffe_pb2.TEST
        return not keep

    def _next(self):
        self.current_row += 1
        if self.current_row == self.blobs_in_file[0].shape[0]:
            if len(self.filenames) > 1:
                self.current_file += 1
                if self.current_file == len(self.filenames):
                    self.current_file = 0
                    if self.shuffle:
                        C_RAND.random_shuffle(self.file_order)
                self._load(self.filenames[self.file_order[self.current_file]])
            self.current_row = 0
            if self.shuffle:
                C_RAND.random_shuffle(self.row_order)
        self.offset += 1

    def reshape(self, bottom_shapes):
        return [(self.batch_size,) + shape for shape in self.row_shapes]

    def forward(self, bottoms):
        tops = [np.empty((self.batch_size,) + shape, np.float32) for shape in self.row_shapes]
        for i in range(self.batch_size):
            while self._skip():
                self._next()
            row = self.row_order[self.current_row]
            for top, blob in zip(tops, self.blobs_in_file):
                top[i] = blob[row]
            self._next()
        return [torch.from_numpy(t).to(self.device) for t in tops]


@register
class HDF5Output(Layer):
    type = "HDF5Output"
    bottoms = (2, 2)
    tops = (0, 0)

    def setup(self, bottom_shapes):
        self.file_name = self.param.hdf5_output_param.file_name
        with hdf5.open_file(self.file_name, "w", f"HDF5Output layer '{self.name}'"):
            pass                         # H5Fcreate(H5F_ACC_TRUNC) at set-up
        self.written = False

    def reshape(self, bottom_shapes):
        data, label = bottom_shapes
        self.shapes = [tuple(self.legacy_dim(s, i) for i in range(4)) for s in (data, label)]
        if self.shapes[0][0] != self.shapes[1][0]:
            raise self.error(f"data {shape_string(data)} and label {shape_string(label)} must "
                             "have the same batch size")
        return []

    def forward(self, bottoms):
        if self.written:
            raise self.error(f"{self.file_name} already holds this layer's batch; Caffe's "
                             "HDF5Output writes one batch per file (a second forward fails)")
        self.log.info("hdf5_output_layer.cpp:33", f"Saving HDF5 file {self.file_name}")
        with hdf5.open_file(self.file_name, "r+", f"HDF5Output layer '{self.name}'") as f:
            for name, x, shape in zip(("data", "label"), bottoms, self.shapes):
                f.create_dataset(name, data=x.detach().float().cpu().numpy().reshape(shape))
        self.written = True
        self.log.info("hdf5_output_layer.cpp:38", f"Successfully saved {self.shapes[0][0]} rows")
        return []
