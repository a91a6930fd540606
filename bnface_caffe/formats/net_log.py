"""The lines Caffe logs while it sets a net up (net.cpp, layer_factory.hpp), written and read.

`Top shape: 64 32 50 50 (5120000)` and its neighbours are what `caffe time` and every
training log show of a net; the engine prints them through these writers, and the tests
and comparisons read them back with the patterns below.
"""
import re

from ..shapes import shape_string
from .glog import cpp_number

TOP_SHAPE = re.compile(r"Top shape: ((?:\d+ )*)\((\d+)\)")
SETTING_UP = re.compile(r"Setting up (\S+)")


def initializing_net(log, param_text):
    log.info("net.cpp:53", "Initializing net from parameters: \n" + param_text)


def creating_layer(log, name):
    log.info("layer_factory.hpp:77", f"Creating layer {name}")


def creating_layer_in_net(log, name):
    log.info("net.cpp:86", f"Creating Layer {name}")


def bottom(log, layer, blob):
    log.info("net.cpp:408", f"{layer} <- {blob}")


def top(log, layer, blob, in_place=False, automatic=False):
    if automatic:
        log.info("net.cpp:382", f"{layer} -> (automatic)")
    elif in_place:
        log.info("net.cpp:369", f"{layer} -> {blob} (in-place)")
    else:
        log.info("net.cpp:382", f"{layer} -> {blob}")


def setting_up(log, layer):
    log.info("net.cpp:124", f"Setting up {layer}")


def top_shape(log, shape, loss_weight=0.0):
    log.info("net.cpp:131", f"Top shape: {shape_string(shape)}")
    if loss_weight:
        log.info("net.cpp:134", f"    with loss weight {cpp_number(loss_weight)}")


def memory_required(log, floats):
    log.info("net.cpp:139", f"Memory required for data: {floats * 4}")


def sharing_parameters(log, name, owner_layer, owner_index):
    log.info("net.cpp:467", f"Sharing parameters '{name}' owned by layer '{owner_layer}', "
                            f"param index {owner_index}")


def needs_backward(log, layer, needs):
    if needs:
        log.info("net.cpp:200", f"{layer} needs backward computation.")
    else:
        log.info("net.cpp:202", f"{layer} does not need backward computation.")


def produces_output(log, blob):
    log.info("net.cpp:244", f"This network produces output {blob}")


def initialization_done(log):
    log.info("net.cpp:257", "Network initialization done.")


def ignoring_source_layer(log, name):
    log.info("net.cpp:746", f"Ignoring source layer {name}")


def skipping_parameter_initialization(log):
    log.info("layer.cpp:0", "Skipping parameter initialization")


# net.cpp StateMeetsRule: why a layer is left out of this NetState
def rule_phase(log, state, rule, layer):
    log.info("net.cpp:296", f"The NetState phase ({state.phase}) differed from the phase "
                            f"({rule.phase}) specified by a rule in layer {layer}")


def rule_min_level(log, state, rule, layer):
    log.info("net.cpp:306", f"The NetState level ({state.level}) is above the min_level "
                            f"({rule.min_level}) specified by a rule in layer {layer}")


def rule_max_level(log, state, rule, layer):
    log.info("net.cpp:316", f"The NetState level ({state.level}) is above the max_level "
                            f"({rule.max_level}) specified by a rule in layer {layer}")


def rule_missing_stage(log, stage, layer):
    log.info("net.cpp:332", f"The NetState did not contain stage '{stage}' specified by a rule "
                            f"in layer {layer}")


def rule_not_stage(log, stage, layer):
    log.info("net.cpp:347", f"The NetState contained a not_stage '{stage}' specified by a rule "
                            f"in layer {layer}")


def top_shapes(text):
    """Every `Top shape:` line of a log as a tuple of dims (for comparing two logs)."""
    return [tuple(int(d) for d in m.group(1).split()) for m in TOP_SHAPE.finditer(text)]

