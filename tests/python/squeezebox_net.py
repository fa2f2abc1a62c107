"""export_nets.py's ResNet behind squeezebox's own contract, at any size:
the kind of file `compress import` writes, made without it, so that the
runtime's tests can run a squeezebox file that is not 32x32.

    python tests/python/squeezebox_net.py OUT.onnx --size H W [--classes N]

The net is exported through export_nets.py's command line, then wrapped:
uint8 [N,H,W,3] `pixels` in, cast, moved to NCHW, scaled to 0-1 and
standardised per channel (ImageNet's statistics) in the graph; `logits`
and `probabilities` out; the classes named class0, class1, ... in the
metadata.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--size", nargs=2, type=int, required=True, metavar=("H", "W"))
    p.add_argument("--classes", type=int, default=10)
    args = p.parse_args()
    h, w = args.size
    with tempfile.TemporaryDirectory() as tmp:
        net = os.path.join(tmp, "net.onnx")
        script = os.path.join(os.path.dirname(__file__), "export_nets.py")
        subprocess.run([sys.executable, script, "resnet", net, "--size", str(h), str(w),
                        "--classes", str(args.classes)], check=True, capture_output=True)
        model = onnx.load(net)
    graph = model.graph
    [image] = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    [output] = graph.output
    graph.initializer.extend([
        numpy_helper.from_array(1 / (255 * STD), "pixels/scale"),
        numpy_helper.from_array(-MEAN / STD, "pixels/shift"),
    ])
    front = [
        helper.make_node("Cast", ["pixels"], ["pixels/float"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["pixels/float"], ["pixels/nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["pixels/nchw", "pixels/scale"], ["pixels/scaled"]),
        helper.make_node("Add", ["pixels/scaled", "pixels/shift"], [image.name]),
    ]
    back = [
        helper.make_node("Identity", [output.name], ["logits"]),
        helper.make_node("Softmax", [output.name], ["probabilities"], axis=1),
    ]
    nodes = front + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.remove(image)
    graph.input.insert(0, helper.make_tensor_value_info(
        "pixels", TensorProto.UINT8, ["batch", h, w, 3]))
    graph.output.remove(output)
    for name in ["logits", "probabilities"]:
        graph.output.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ["batch", args.classes]))
    labels = [f"class{i}" for i in range(args.classes)]
    for key, value in {"arch": "resnet", "labels": json.dumps(labels)}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, args.out)


if __name__ == "__main__":
    main()
