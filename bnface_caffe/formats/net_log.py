"""The lines Caffe logs while it sets a net up (net.cpp, layer_factory.hpp), written and read.

`Top shape: 64 32 50 50 (5120000)` and its neighbours are what `caffe time` and every
training log show of a net; the engine prints them through these writers, and the tests
and comparisons read them back with the patterns below.
"""
import re

from ..shapes import shape_string
from .lines import line

TOP_SHAPE = re.compile(r"Top shape: ((?:\d+ )*)\((\d+)\)")
SETTING_UP = re.compile(r"Setting up (\S+)")

initializing_net = line("net.cpp:53", "Initializing net from parameters: \n{}")
creating_layer = line("layer_factory.hpp:77", "Creating layer {}")
creating_layer_in_net = line("net.cpp:86", "Creating Layer {}")
bottom = line("net.cpp:408", "{} <- {}")
_top = line("net.cpp:382", "{} -> {}")
_top_in_place = line("net.cpp:369", "{} -> {} (in-place)")
setting_up = line("net.cpp:124", "Setting up {}")
_top_shape = line("net.cpp:131", "Top shape: {}")
_with_loss_weight = line("net.cpp:134", "    with loss weight {}")
_memory = line("net.cpp:139", "Memory required for data: {}")
sharing_parameters = line("net.cpp:467", "Sharing parameters '{}' owned by layer '{}', param index {}")
_needs_backward = line("net.cpp:200", "{} needs backward computation.")
_no_backward = line("net.cpp:202", "{} does not need backward computation.")
produces_output = line("net.cpp:244", "This network produces output {}")
initialization_done = line("net.cpp:257", "Network initialization done.")
ignoring_source_layer = line("net.cpp:746", "Ignoring source layer {}")
ignoring_source_layer_hdf5 = line("net.cpp:801", "Ignoring source layer {}")   # from a .h5
skipping_parameter_initialization = line("layer.cpp:0", "Skipping parameter initialization")

# net.cpp StateMeetsRule: why a layer is left out of this NetState
_rule_phase = line("net.cpp:296", "The NetState phase ({}) differed from the phase ({}) "
                                  "specified by a rule in layer {}")
_rule_min_level = line("net.cpp:306", "The NetState level ({}) is above the min_level ({}) "
                                      "specified by a rule in layer {}")
_rule_max_level = line("net.cpp:316", "The NetState level ({}) is above the max_level ({}) "
                                      "specified by a rule in layer {}")
rule_missing_stage = line("net.cpp:332", "The NetState did not contain stage '{}' specified by a "
                                         "rule in layer {}")
rule_not_stage = line("net.cpp:347", "The NetState contained a not_stage '{}' specified by a rule "
                                     "in layer {}")


def top(log, layer, blob, in_place=False, automatic=False):
    if automatic:
        _top(log, layer, "(automatic)")
    else:
        (_top_in_place if in_place else _top)(log, layer, blob)


def top_shape(log, shape, loss_weight=0.0):
    _top_shape(log, shape_string(shape))
    if loss_weight:
        _with_loss_weight(log, float(loss_weight))


def memory_required(log, floats):
    _memory(log, floats * 4)


def needs_backward(log, layer, needs):
    (_needs_backward if needs else _no_backward)(log, layer)


def rule_phase(log, state, rule, layer):
    _rule_phase(log, state.phase, rule.phase, layer)


def rule_min_level(log, state, rule, layer):
    _rule_min_level(log, state.level, rule.min_level, layer)


def rule_max_level(log, state, rule, layer):
    _rule_max_level(log, state.level, rule.max_level, layer)


def top_shapes(text):
    """Every `Top shape:` line of a log as a tuple of dims (for comparing two logs)."""
    return [tuple(int(d) for d in m.group(1).split()) for m in TOP_SHAPE.finditer(text)]
