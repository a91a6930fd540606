"""Regenerate caffe_pb2.py from caffe.proto (`make proto`); the test suite uses
`generate()` to fail when the committed module is stale."""
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE / "caffe.proto"
MODULE = HERE / "caffe_pb2.py"


DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = (
    "# bnface-caffe: a private descriptor pool, so that this module and a real pycaffe's\n"
    "# caffe_pb2 (the same 'caffe.*' names) can both be imported in one process.\n"
    "_POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = _POOL.AddSerializedFile(")


def generate() -> str:
    """Return protoc's module for caffe.proto, registered in a private descriptor pool."""
    from grpc_tools import protoc  # test/dev dependency only

    with tempfile.TemporaryDirectory() as out:
        status = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}", str(PROTO)])
        if status != 0:
            raise SystemExit(f"{PROTO}: protoc failed with status {status}")
        source = (pathlib.Path(out) / "caffe_pb2.py").read_text()
    if source.count(DEFAULT_POOL) != 1:
        raise SystemExit("protoc's output changed shape: cannot move caffe_pb2 to a private pool")
    return source.replace(DEFAULT_POOL, PRIVATE_POOL)


def main() -> None:
    MODULE.write_text(generate())
    print(f"wrote {MODULE.relative_to(pathlib.Path.cwd()) if MODULE.is_relative_to(pathlib.Path.cwd()) else MODULE}", file=sys.stderr)


if __name__ == "__main__":
    main()
