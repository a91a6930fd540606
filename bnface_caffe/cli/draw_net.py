"""draw_net: a net prototxt as a diagram (PNG, SVG, PDF, or DOT text), as Caffe's
python/draw_net.py draws it.

Layers are boxes (convolutions red, pooling orange, inner products purple, in-place layers
green, others blue), blobs grey octagons, edges labelled with batch sizes and num_output.
Needs pydot (pip install pydot) and, except for .dot, Graphviz's `dot` program
(apt-get install graphviz).
"""
import argparse
import os

from ..errors import UserError
from ..formats.glog import Glog
from ..formats.prototxt import write_bytes
from ..formats.upgrade import read_net
from .. import net_diagram
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("net", metavar="NET.prototxt", help="net prototxt (train_val or deploy)")
    p.add_argument("output", metavar="OUT", help="diagram to write: .png, .svg, .pdf or .dot "
                                                 "(the format follows the extension)")
    p.add_argument("--rankdir", default="LR", choices=("LR", "RL", "TB", "BT"),
                   help="direction of the graph: LR left to right (default), TB top to bottom")
    p.add_argument("--phase", default="ALL", choices=sorted(net_diagram.PHASES),
                   help="draw the layers of this phase only (default ALL: every layer)")
    p.add_argument("--display-lrm", "--display_lrm", action="store_true",
                   help="show the lr_mult of convolution and inner-product layers")
    options.add_quiet(p, "'wrote' line")
    options.add_version(p)
    return p


def main(argv):
    args = parser().parse_args(argv)
    fmt = os.path.splitext(args.output)[1].lower().lstrip(".")
    if fmt not in net_diagram.FORMATS:
        raise UserError(f"{args.output}: the diagram must end in "
                        f"{', '.join('.' + f for f in net_diagram.FORMATS)}")
    options.check_writable(args.output, "OUT")
    net = read_net(args.net, Glog.silent())
    if not net.layer:
        raise UserError(f"{args.net}: no layers to draw")
    data = net_diagram.render(net, fmt, args.rankdir, net_diagram.PHASES[args.phase],
                              args.display_lrm)
    write_bytes(args.output, data)
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from . import run
    run(main)
