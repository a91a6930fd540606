"""tools/draw_net.py: Caffe's draw_net diagram of both paper nets. The DOT text is checked
against the prototxt (one box per layer, Caffe's colours and labels, edge labels); PNG and
SVG are drawn when Graphviz's `dot` is installed (skipped otherwise)."""
import os
import re
import shutil

import pytest

from bnface_caffe.cli import draw_net
from bnface_caffe.formats.glog import Glog
from bnface_caffe.formats.upgrade import read_net
from conftest import ROOT, assert_one_line_status, call_main

pytest.importorskip("pydot")

NETS = [os.path.join(ROOT, "prototxt", name) for name in
        ("baseline_train_val.prototxt", "bn_train_val.prototxt")]
COLOURS = {"Convolution": "#FF5050", "Pooling": "#FF9900", "InnerProduct": "#CC33FF"}


def nodes_and_edges(dot_text):
    nodes = dict(re.findall(r'^"([^"]+)" \[(.*)\];$', dot_text, re.M))
    edges = re.findall(r'^"([^"]+)" -> "([^"]+)" \[label="([^"]*)"\];$', dot_text, re.M)
    return nodes, edges


@pytest.mark.parametrize("path", NETS)
def test_dot_text_follows_the_net(path, tmp_path, capsys):
    out = tmp_path / "net.dot"
    status, stdout, _ = call_main(draw_net.main, [path, out, "--phase", "TEST"], capsys)
    assert status == 0 and stdout.strip() == f"wrote {out}"
    nodes, edges = nodes_and_edges(out.read_text())
    net = read_net(path, Glog.silent())
    test_layers = [l for l in net.layer if not l.include or l.include[0].phase == 1]
    assert sorted(n[6:] for n in nodes if n.startswith("layer:")) == sorted(l.name for l in test_layers)
    for layer in test_layers:
        attributes = nodes[f"layer:{layer.name}"]
        in_place = list(layer.bottom) == list(layer.top) and len(layer.top) == 1
        colour = "#90EE90" if in_place else COLOURS.get(layer.type, "#6495ED")
        assert f'fillcolor="{colour}"' in attributes, layer.name
        kind = layer.type + (" MAX" if layer.type == "Pooling" and layer.pooling_param.pool == 0
                             else " AVE" if layer.type == "Pooling" else "")
        assert f'label="{layer.name}\\n({kind})' in attributes, layer.name
        if layer.type == "Convolution":
            c = layer.convolution_param
            assert f"kernel size: {c.kernel_size[0]}\\nstride: 1\\npad: {c.pad[0]}" in attributes
        for top in layer.top:
            label = {"Convolution": str(layer.convolution_param.num_output),
                     "InnerProduct": str(layer.inner_product_param.num_output),
                     "Data": f"Batch {layer.data_param.batch_size}"}.get(layer.type, "")
            assert (f"layer:{layer.name}", f"blob:{top}", label) in edges
        for bottom in layer.bottom:
            assert (f"blob:{bottom}", f"layer:{layer.name}", "") in edges
    # blobs read by a layer are grey octagons; the net's outputs plain ellipses
    assert 'shape="octagon"' in nodes["blob:data"] and nodes["blob:accuracy"] == 'label="accuracy"'
    # top to bottom: words separated by spaces, not line breaks
    call_main(draw_net.main, [path, out, "--rankdir", "TB", "-q"], capsys)
    assert 'label="conv1_1 (Convolution) kernel size: 3 stride: 1 pad: 1"' in out.read_text()


def test_train_phase_leaves_out_the_test_layers(tmp_path, capsys):
    out = tmp_path / "net.dot"
    call_main(draw_net.main, [NETS[1], out, "--phase", "TRAIN", "--display-lrm"], capsys)
    nodes, _ = nodes_and_edges(out.read_text())
    assert "layer:accuracy" not in nodes and "layer:loss" in nodes
    assert "lr mult: 1.0, 2.0" in nodes["layer:fc"]


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot program is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("path", NETS)
def test_png_and_svg_of_both_paper_nets(path, tmp_path, capsys):
    for name in ("net.png", "net.svg"):
        status, _, err = call_main(draw_net.main, [path, tmp_path / name], capsys)
        assert status == 0, err
    assert (tmp_path / "net.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "net.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "conv4_2" in svg and "SoftmaxWithLoss" in svg and "#ff5050" in svg.lower()


def test_missing_dot_program_or_pydot_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    status, _, err = call_main(draw_net.main, [NETS[0], tmp_path / "n.png"], capsys)
    assert_one_line_status(status, err, "`dot` program is not installed", "apt-get install graphviz")
    status, _, _ = call_main(draw_net.main, [NETS[0], tmp_path / "n.dot"], capsys)
    assert status == 0                     # DOT text needs no Graphviz
    monkeypatch.setitem(__import__("sys").modules, "pydot", None)
    status, _, err = call_main(draw_net.main, [NETS[0], tmp_path / "m.dot"], capsys)
    assert_one_line_status(status, err, "needs pydot: pip install pydot")
    assert sorted(os.listdir(tmp_path)) == ["n.dot"]


def test_bad_output_names_are_one_line(tmp_path, capsys):
    status, _, err = call_main(draw_net.main, [NETS[0], tmp_path / "n.jpg"], capsys)
    assert_one_line_status(status, err, "must end in .png, .svg, .pdf, .dot")
    (tmp_path / "d.png").mkdir()
    status, _, err = call_main(draw_net.main, [NETS[0], tmp_path / "d.png"], capsys)
    assert_one_line_status(status, err, "is a directory")
    status, _, err = call_main(draw_net.main, [tmp_path / "none.prototxt", tmp_path / "n.png"], capsys)
    assert_one_line_status(status, err, "none.prototxt")
