"""The committed generated files (prototxt/, solvers/) and the commands that make them.

`python -m bnface_caffe.generated [nets|solvers|all]` rewrites them (what `make nets
solvers` runs); `--check` exits 1 listing stale files. The test suite uses `stale()`.
"""
import contextlib
import io
import os
import sys

from .cli import gen_net, gen_solver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NETS = {
    "prototxt/baseline_train_val.prototxt": [],
    "prototxt/baseline_deploy.prototxt": ["--deploy"],
    "prototxt/bn_train_val.prototxt": ["--bn"],
    "prototxt/bn_deploy.prototxt": ["--bn", "--deploy"],
}
SOLVERS = {f"solvers/{name}.prototxt": [name]
           for name in ("original", "long_step", "short_step", "multistep", "early_drop")}


def render(tool, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tool.main(argv)
    return out.getvalue()


def targets(which="all"):
    if which in ("nets", "all"):
        yield from ((path, gen_net, argv) for path, argv in NETS.items())
    if which in ("solvers", "all"):
        yield from ((path, gen_solver, argv) for path, argv in SOLVERS.items())


def stale(which="all"):
    """Paths whose committed content differs from what the generators write now."""
    result = []
    for path, tool, argv in targets(which):
        full = os.path.join(ROOT, path)
        current = open(full).read() if os.path.exists(full) else None
        if current != render(tool, argv):
            result.append(path)
    return result


def main(argv):
    check = "--check" in argv
    which = next((a for a in argv if a != "--check"), "all")
    if check:
        paths = stale(which)
        for path in paths:
            print(f"stale: {path} (run `make nets solvers`)", file=sys.stderr)
        return 1 if paths else 0
    for path, tool, args in targets(which):
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(render(tool, args))
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
