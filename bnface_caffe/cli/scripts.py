"""Console-script entry points (pyproject.toml [project.scripts]): bnface-<tool> runs
bnface_caffe.cli.<tool>.main through cli.run, exactly as tools/<tool>.py does."""
from . import console

build_lmdb = console("build_lmdb")
caffe = console("caffe")
draw_net = console("draw_net")
export_onnx = console("export_onnx")
forward = console("forward")
gen_net = console("gen_net")
gen_solver = console("gen_solver")
parse_log = console("parse_log")
plot_curves = console("plot_curves")
plot_lr = console("plot_lr")
report = console("report")
reproduce = console("reproduce")
time_net = console("time_net")
train = console("train")
verify = console("verify")
