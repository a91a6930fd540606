"""The schema: the committed caffe_pb2.py is fresh, and field numbers/defaults are Caffe's."""
from bnface_caffe.proto import caffe_pb2, regenerate


def test_committed_caffe_pb2_is_fresh():
    committed = regenerate.MODULE.read_text()
    assert committed == regenerate.generate(), "caffe_pb2.py is stale: run `make proto`"


def test_layer_is_field_100_and_written_last():
    net = caffe_pb2.NetParameter(name="n")
    net.layer.add(name="a")
    raw = net.SerializeToString()
    # name (1, length-delimited) = tag 0x0A; layer (100, length-delimited) = varint 802 = A2 06
    assert raw[:3] == b"\x0a\x01n"
    assert raw[3:5] == b"\xa2\x06"


def test_blob_data_is_packed_float_field_5_and_shape_field_7():
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0, -2.0])
    raw = blob.SerializeToString()
    # data (5, packed): 0x2A, 8 bytes of little-endian float32; shape (7): 0x3A
    assert raw.startswith(b"\x2a\x08" + b"\x00\x00\x80\x3f" + b"\x00\x00\x00\xc0")
    # BlobShape.dim (1, packed varint): 0x0A, 2 bytes, 2, 3
    assert raw[10:] == b"\x3a\x04\x0a\x02\x02\x03"


def test_datum_and_solver_state_numbers():
    d = caffe_pb2.Datum(channels=1, height=2, width=3, data=b"\x07", label=5, encoded=True)
    assert d.SerializeToString() == bytes([0x08, 1, 0x10, 2, 0x18, 3, 0x22, 1, 7, 0x28, 5, 0x38, 1])
    s = caffe_pb2.SolverState(iter=3, current_step=2)
    assert s.SerializeToString() == bytes([0x08, 3, 0x20, 2])


def test_solver_parameter_has_all_42_fields_with_caffe_defaults():
    fields = caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_number
    assert sorted(fields) == list(range(1, 43))
    s = caffe_pb2.SolverParameter()
    assert (s.regularization_type, s.type, s.average_loss, s.iter_size) == ("L2", "SGD", 1, 1)
    assert s.clip_gradients == -1 and s.random_seed == -1 and s.snapshot_after_train
    assert s.solver_mode == caffe_pb2.SolverParameter.GPU
    assert s.snapshot_format == caffe_pb2.SolverParameter.BINARYPROTO
    assert abs(s.rms_decay - 0.99) < 1e-7 and abs(s.momentum2 - 0.999) < 1e-7
    assert abs(s.delta - 1e-8) < 1e-15 and s.test_initialization


def test_layer_parameter_covers_every_param_field_up_to_148():
    numbers = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_number
    assert set(range(100, 149)) <= set(numbers)
    assert numbers[139].name == "batch_norm_param" and numbers[142].name == "scale_param"
    assert numbers[148].name == "clip_param"


def test_layer_parameter_defaults_that_matter():
    data = caffe_pb2.DataParameter()
    assert data.backend == caffe_pb2.DataParameter.LEVELDB and data.prefetch == 4
    pool = caffe_pb2.PoolingParameter()
    assert pool.round_mode == caffe_pb2.PoolingParameter.CEIL and pool.stride == 1
    bn = caffe_pb2.BatchNormParameter()
    assert not bn.HasField("use_global_stats")
    assert abs(bn.moving_average_fraction - 0.999) < 1e-7 and abs(bn.eps - 1e-5) < 1e-12
    assert caffe_pb2.FillerParameter().type == "constant"
    assert caffe_pb2.ConvolutionParameter().bias_term
    assert caffe_pb2.LossParameter().normalization == caffe_pb2.LossParameter.VALID
    assert caffe_pb2.NetState().phase == caffe_pb2.TEST
    assert caffe_pb2.V1LayerParameter.SOFTMAX_LOSS == 21 and caffe_pb2.V1LayerParameter.DECONVOLUTION == 39


def test_schema_lives_in_a_private_pool_so_real_pycaffe_can_load_beside_it():
    from google.protobuf import descriptor_pool

    # What a real pycaffe's caffe_pb2 does on import: register caffe.proto in the default pool.
    descriptor_pool.Default().AddSerializedFile(caffe_pb2.DESCRIPTOR.serialized_pb)
    assert caffe_pb2.NetParameter.DESCRIPTOR.full_name == "caffe.NetParameter"
    assert caffe_pb2.NetParameter(name="x").SerializeToString() == b"\x0a\x01x"
