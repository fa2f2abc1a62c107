"""export_nets.py's ResNet behind squeezebox's own contract, at any size:
the file `compress import` would write, made without it, so that the
runtime's tests can run a squeezebox file that is not 32x32.

    python tests/python/squeezebox_net.py OUT.onnx --size H W [--classes N]

The graph takes uint8 [N,H,W,3] `pixels`, scales them to 0-1 and
standardises each channel (ImageNet's statistics) in the graph, and
outputs `logits` and `probabilities`; the metadata names the classes
class0, class1, ...
"""

import argparse
import json
import os
import sys

import onnx
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from export_nets import ResNet  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Squeezebox(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        std = torch.tensor(STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 1 / (255 * std))
        self.register_buffer("shift", -torch.tensor(MEAN).view(1, 3, 1, 1) / std)

    def forward(self, pixels):
        logits = self.net(pixels.float().permute(0, 3, 1, 2) * self.scale + self.shift)
        return logits, torch.softmax(logits, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--size", nargs=2, type=int, required=True, metavar=("H", "W"))
    p.add_argument("--classes", type=int, default=10)
    args = p.parse_args()
    torch.manual_seed(0)
    net = Squeezebox(ResNet(args.classes)).eval()
    h, w = args.size
    torch.onnx.export(
        net, (torch.zeros(2, h, w, 3, dtype=torch.uint8),), args.out, opset_version=13,
        dynamo=False, input_names=["pixels"], output_names=["logits", "probabilities"],
        dynamic_axes={n: {0: "batch"} for n in ["pixels", "logits", "probabilities"]},
    )
    model = onnx.load(args.out)
    labels = [f"class{i}" for i in range(args.classes)]
    for key, value in {"arch": "resnet", "labels": json.dumps(labels)}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, args.out)


if __name__ == "__main__":
    main()
