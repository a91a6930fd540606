import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bnface_caffe.cli import run, draw_net
run(draw_net.main)
