"""gen_net: the paper's nets as Caffe prototxt (train_val or deploy)."""
import argparse

from ..architectures import NetOptions, build_net, parse_widths
from . import options, write_generated

DEFAULTS = NetOptions()


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(": ", 1)[1].strip())
    p.add_argument("--bn", action="store_true", help="the BN net (BatchNorm+Scale, 7 convs, no Dropout)")
    p.add_argument("--deploy", action="store_true", help="deploy net: Input 1x1x50x50, Softmax 'prob'")
    p.add_argument("--num-classes", type=int, default=DEFAULTS.num_classes)
    p.add_argument("--widths", default=",".join(map(str, DEFAULTS.widths)),
                   help="8 conv widths, two per block (the BN net ignores the 3rd)")
    p.add_argument("--input-size", type=int, default=DEFAULTS.input_size)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--test-batch-size", type=int, default=DEFAULTS.test_batch_size)
    p.add_argument("--train-lmdb", default=DEFAULTS.train_lmdb)
    p.add_argument("--test-lmdb", default=DEFAULTS.test_lmdb)
    mean = p.add_mutually_exclusive_group()
    mean.add_argument("--mean-file", default=DEFAULTS.mean_file)
    mean.add_argument("--mean-value", type=float, help="one mean pixel value instead of a mean file")
    mean.add_argument("--no-mean", action="store_true", help="no mean subtraction")
    options.add_pixel_scale(p, DEFAULTS.scale, "pixel multiplier after the mean (1/256)")
    p.add_argument("--mirror", action="store_true", help="random horizontal flips in TRAIN")
    p.add_argument("--dropout", type=float, help="dropout ratio before the classifier "
                   "(default 0.5 for the baseline, none for --bn; 0 disables)")
    p.add_argument("--block2-convs", type=int, choices=(1, 2),
                   help="convolutions in block 2 (default 2 for the baseline, 1 for --bn: the "
                        "paper removed one from the BN net; 2 restores it)")
    p.add_argument("--filler", choices=("xavier", "msra"), default=DEFAULTS.filler,
                   help="conv/fc weight filler")
    p.add_argument("-o", "--output", help="output prototxt (default: stdout)")
    options.add_version(p)
    return p


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    opts = NetOptions(
        bn=args.bn, deploy=args.deploy, num_classes=args.num_classes,
        widths=parse_widths(args.widths), input_size=args.input_size,
        batch_size=args.batch_size, test_batch_size=args.test_batch_size,
        train_lmdb=args.train_lmdb, test_lmdb=args.test_lmdb,
        mean_file="" if args.no_mean or args.mean_value is not None else args.mean_file,
        mean_value=args.mean_value, scale=options.pixel_scale(args, p.prog), mirror=args.mirror,
        dropout=args.dropout, block2_convs=args.block2_convs, filler=args.filler)
    net = build_net(opts)
    about = f"The paper's {'BN' if args.bn else 'baseline'} net ({'deploy' if args.deploy else 'train_val'})"
    write_generated(net, about, "gen_net", argv, args.output)
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
