"""Caffe's file formats, one module per artifact; every other package reads and writes
Caffe files through these.

    prototxt     text and binary protobuf files (atomic writes, located errors)
    upgrade      old net definitions brought up to date (V0/V1 layers, input fields)
    blobproto    BlobProto <-> arrays, and mean.binaryproto
    datum        Datum records (LMDB values), incl. the raw batch fast path
    caffemodel   .caffemodel weights: the one way in, with every refusal
    solverstate  .solverstate snapshots
    hdf5         .caffemodel.h5 / .solverstate.h5, and HDF5 datasets (HDF5Data)
    glog         glog's line format, written (Glog) and read (parse_prefix)
    solver_log   the solver's log lines, writers beside the patterns that read them
    net_log      the net set-up lines ("Top shape: ...")
    tool_log     the `caffe` tool's lines (train, time)
"""
