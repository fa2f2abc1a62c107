"""Small image classifiers exported with torch.onnx.export, as users export
theirs: the foreign models the tests of `compress import` and label-image
read.

    python tests/python/export_nets.py resnet OUT.onnx [--opset 13|default]
        [--size H W] [--classes N] [--width K] [--seed S]
        [--train CIFAR_DIR --steps K]

resnet: a ResNet-style net (BatchNorm, a stride-2 residual block, global
average pooling, a linear classifier). mobilenet: a MobileNet-style net
(stride-2 stem with HardSwish, depthwise 3x3 with ReLU6, squeeze-and-
excitation with HardSigmoid, LeakyReLU, AveragePool, Dropout, a Softmax at
the end). Weights are seeded; `--train` fits them briefly to CIFAR-10's
first training batch so that accuracy means something. `--opset 13` uses the
TorchScript exporter, `default` the exporter's default (torch.export, its
own opset). The batch axis is dynamic either way.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class ResNet(nn.Module):
    """At 64x64 and above the stem downsamples 4x, as torchvision's does."""

    def __init__(self, classes, size, width):
        super().__init__()
        a, b = 16 * width, 32 * width
        large = size >= 64
        self.stem = nn.Conv2d(3, a, 3, 2 if large else 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(a)
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if large else nn.Identity()
        self.conv1 = nn.Conv2d(a, b, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(b)
        self.conv2 = nn.Conv2d(b, b, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(b)
        self.shortcut = nn.Conv2d(a, b, 1, 2, 0, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(b)
        self.fc = nn.Linear(b, classes)

    def forward(self, x):
        x = self.stem_pool(F.relu(self.stem_bn(self.stem(x))))
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = F.relu(y + self.shortcut_bn(self.shortcut(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class MobileNet(nn.Module):
    def __init__(self, classes, size, width):
        super().__init__()
        a, b = 16 * width, 24 * width
        self.stem = nn.Conv2d(3, a, 3, 2, 1)
        self.dw = nn.Conv2d(a, a, 3, 1, 1, groups=a, bias=False)
        self.dw_bn = nn.BatchNorm2d(a)
        self.pw = nn.Conv2d(a, b, 1)
        self.se_reduce = nn.Conv2d(b, 8, 1)
        self.se_expand = nn.Conv2d(8, b, 1)
        self.pool = nn.AvgPool2d(2)
        # Large pictures are pooled down to 4x4 before the classifier.
        side = size // 8
        self.shrink = nn.AvgPool2d(side // 4) if side > 4 else nn.Identity()
        side = min(side, 4)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(b * side * side, classes)

    def forward(self, x):
        x = F.hardswish(self.stem(x))
        x = F.relu6(self.dw_bn(self.dw(x)))
        x = self.pw(x)
        gate = x.mean((2, 3), keepdim=True)
        gate = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(gate))))
        x = F.leaky_relu(x * gate, 0.1)
        x = self.shrink(self.pool(self.pool(x)))
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc(self.drop(x)), 1)


def cifar_batches(root):
    """CIFAR-10's first training batch (binary version) as float NCHW on a
    0-1 scale, and its labels."""
    path = Path(root) / "cifar-10-batches-bin" / "data_batch_1.bin"
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    x = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    return torch.from_numpy(x), torch.from_numpy(records[:, 0].astype(np.int64))


def train(net, root, steps, mean, std):
    """A few steps of SGD on CIFAR-10, with the normalisation the test uses."""
    x, y = cifar_batches(root)
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(steps):
        pick = torch.randint(0, len(x), (128,), generator=generator)
        out = net((x[pick] - mean) / std)
        # The MobileNet ends in softmax: its loss takes log-probabilities.
        loss = F.nll_loss(torch.log(out + 1e-9), y[pick]) if isinstance(net, MobileNet) \
            else F.cross_entropy(out, y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("net", choices=["resnet", "mobilenet"])
    p.add_argument("out")
    p.add_argument("--opset", default="13", choices=["13", "default"])
    p.add_argument("--size", nargs=2, type=int, default=[32, 32], metavar=("H", "W"))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=1, help="channel multiplier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", metavar="CIFAR_DIR")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--mean", type=float, nargs=3, default=[0.49, 0.48, 0.45])
    p.add_argument("--std", type=float, nargs=3, default=[0.25, 0.24, 0.26])
    args = p.parse_args()

    torch.manual_seed(args.seed)
    h, w = args.size
    kind = ResNet if args.net == "resnet" else MobileNet
    net = kind(args.classes, h, args.width)
    if args.train:
        train(net, args.train, args.steps, args.mean, args.std)
    else:
        # Random running statistics, so that folding batch norm is tested.
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(2, 3, h, w)
    if args.opset == "13":
        torch.onnx.export(
            net, (x,), args.out, opset_version=13, dynamo=False,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    else:
        torch.onnx.export(
            net, (x,), args.out, dynamo=True, external_data=False,
            input_names=["input"], output_names=["output"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        )


if __name__ == "__main__":
    main()
