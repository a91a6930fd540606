"""The committed generated files (prototxt/, solvers/) and the commands that make them.

`python -m bnface_caffe.generated [nets|solvers|all] [--root DIR]` writes them under DIR
(default: the current directory; what `make nets solvers` runs in the repository);
`--check` exits 1 listing stale files. The test suite uses `stale(root)`.
"""
import contextlib
import io
import os
import sys

from .cli import gen_net, gen_solver

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


def stale(root, which="all"):
    """Paths under `root` whose content differs from what the generators write now."""
    result = []
    for path, tool, argv in targets(which):
        full = os.path.join(root, path)
        current = open(full).read() if os.path.exists(full) else None
        if current != render(tool, argv):
            result.append(path)
    return result


def main(argv):
    check = "--check" in argv
    root = "."
    if "--root" in argv:
        root = argv[argv.index("--root") + 1]
        argv = [a for a in argv if a not in ("--root", root)]
    which = next((a for a in argv if a != "--check"), "all")
    if check:
        paths = stale(root, which)
        for path in paths:
            print(f"stale: {path} (run `make nets solvers`)", file=sys.stderr)
        return 1 if paths else 0
    for path, tool, args in targets(which):
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(render(tool, args))
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
