"""Regenerate caffe_pb2.py from caffe.proto (`make proto`); the test suite uses
`generate()` to fail when the committed module is stale."""
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE / "caffe.proto"
MODULE = HERE / "caffe_pb2.py"


def generate() -> str:
    """Return the source protoc writes for caffe.proto today."""
    from grpc_tools import protoc  # test/dev dependency only

    with tempfile.TemporaryDirectory() as out:
        status = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}", str(PROTO)])
        if status != 0:
            raise SystemExit(f"{PROTO}: protoc failed with status {status}")
        return (pathlib.Path(out) / "caffe_pb2.py").read_text()


def main() -> None:
    MODULE.write_text(generate())
    print(f"wrote {MODULE.relative_to(pathlib.Path.cwd()) if MODULE.is_relative_to(pathlib.Path.cwd()) else MODULE}", file=sys.stderr)


if __name__ == "__main__":
    main()
