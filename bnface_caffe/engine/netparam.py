"""NetParameter -> NetParameter steps of Net::Init: state filtering and split insertion.

filter_net keeps the layers whose include/exclude rules the NetState meets
(Net::FilterNet, StateMeetsRule). insert_splits adds a Split layer after every
top that more than one later layer reads (a non-zero loss_weight counts as a
reader), named `<blob>_<layer>_<top index>_split`, with tops `..._split_<j>`
(util/insert_splits.cpp).
"""
from ..errors import UserError
from ..formats import net_log
from ..proto import caffe_pb2


def state_meets_rule(state, rule, layer_name, log):
    if rule.HasField("phase") and rule.phase != state.phase:
        net_log.rule_phase(log, state, rule, layer_name)
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        net_log.rule_min_level(log, state, rule, layer_name)
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        net_log.rule_max_level(log, state, rule, layer_name)
        return False
    for stage in rule.stage:
        if stage not in state.stage:
            net_log.rule_missing_stage(log, stage, layer_name)
            return False
    for stage in rule.not_stage:
        if stage in state.stage:
            net_log.rule_not_stage(log, stage, layer_name)
            return False
    return True


def filter_net(param, state, log, source="<net>"):
    """A copy of `param` holding only the layers `state` selects."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    out.ClearField("layer")
    for layer in param.layer:
        if len(layer.include) and len(layer.exclude):
            raise UserError(f"{source}: layer '{layer.name}' has both include and exclude rules; "
                            "specify either include rules or exclude rules, not both")
        keep = len(layer.include) == 0
        for rule in layer.exclude:
            if keep and state_meets_rule(state, rule, layer.name, log):
                keep = False
        for rule in layer.include:
            if not keep and state_meets_rule(state, rule, layer.name, log):
                keep = True
        if keep:
            out.layer.add().CopyFrom(layer)
    return out


def split_layer_name(layer_name, blob_name, top_index):
    return f"{blob_name}_{layer_name}_{top_index}_split"


def split_blob_name(layer_name, blob_name, top_index, split_index):
    return f"{blob_name}_{layer_name}_{top_index}_split_{split_index}"


def insert_splits(param, source="<net>"):
    """A copy of `param` with Split layers where a top feeds more than one consumer."""
    last_top = {}          # blob name -> (layer index, top index) that last produced it
    source_of = {}         # (layer, bottom index) -> (layer, top index)
    uses = {}              # (layer, top index) -> number of readers (+1 for a loss)
    loss_weight = {}       # (layer, top index) -> explicit loss weight
    for i, layer in enumerate(param.layer):
        for j, blob in enumerate(layer.bottom):
            if blob not in last_top:
                raise UserError(f"{source}: layer '{layer.name}' reads bottom '{blob}' (bottom "
                                f"index {j}), which no earlier layer produces; check the blob "
                                "names and the layer order")
            source_of[(i, j)] = last_top[blob]
            uses[last_top[blob]] = uses.get(last_top[blob], 0) + 1
        for j, blob in enumerate(layer.top):
            last_top[blob] = (i, j)
        for j in range(min(len(layer.loss_weight), len(layer.top))):
            top = last_top[layer.top[j]]
            loss_weight[top] = layer.loss_weight[j]
            if loss_weight[top]:
                uses[top] = uses.get(top, 0) + 1
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    out.ClearField("layer")
    next_split = {}
    for i, original in enumerate(param.layer):
        layer = out.layer.add()
        layer.CopyFrom(original)
        for j, blob in enumerate(layer.bottom):
            top = source_of[(i, j)]
            if uses.get(top, 0) > 1:
                producer = param.layer[top[0]].name
                k = next_split.get(top, 0)
                next_split[top] = k + 1
                layer.bottom[j] = split_blob_name(producer, blob, top[1], k)
        for j, blob in enumerate(layer.top):
            top = (i, j)
            n = uses.get(top, 0)
            if n > 1:
                weight = loss_weight.get(top, 0.0)
                split = out.layer.add(name=split_layer_name(layer.name, blob, j), type="Split")
                split.bottom.append(blob)
                for k in range(n):
                    split.top.append(split_blob_name(layer.name, blob, j, k))
                    if weight:
                        split.loss_weight.append(weight if k == 0 else 0)
                if weight:
                    # Caffe clears all of the producer's loss weights here; split top 0
                    # carries this one, and readers start at split top 1.
                    layer.ClearField("loss_weight")
                    next_split[top] = next_split.get(top, 0) + 1
    return out
