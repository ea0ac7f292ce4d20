#!/usr/bin/python3
"""Trains a small ResNet on Fashion-MNIST with PyTorch and exports it to ONNX for parry.

    /usr/bin/python3 scripts/train-fmnist-resnet.py [--epochs 4] [--seed 0] [--out models/fmnist-resnet]

Needs Debian's python3-torch and dataset-fashion-mnist (parry itself never needs Python). Writes
OUT/model.onnx (opset 13, NCHW input [batch, 1, 28, 28] in [0, 1], logits out) and OUT/parry.json
(bounds, layout, class names), and prints the test accuracy torch measured.

With --fixture DIR it instead writes a tiny randomly initialised network of the same kinds of
layers (conv, batch norm, residual add, max pool, global average pool, linear) with the logits
torch computes on four fixed inputs, for parry's tests.
"""
import argparse
import gzip
import json
import os

import numpy as np
import torch
from torch import nn

DATA = '/usr/share/datasets/fashion-mnist'
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
           'Bag', 'Ankle boot']


def read_idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    prefix = 'train' if split == 'train' else 't10k'
    x = read_idx(f'{prefix}-images-idx3-ubyte.gz').astype(np.float32) / 255.0
    y = read_idx(f'{prefix}-labels-idx1-ubyte.gz').astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


class Block(nn.Module):
    """conv-bn-relu-conv-bn plus the shortcut (a strided 1x1 conv when the shape changes), relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, widths=(16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(Block(cin, w, 1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, 10)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, 2, 1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, 1, 1, groups=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = self.pool(torch.relu(self.conv2(y) + y))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def export(model, path, shape):
    model.eval()
    torch.onnx.export(model, torch.zeros(shape), path, opset_version=13, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'batch'},
                                                             'logits': {0: 'batch'}})


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return sum((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
                   for i in range(0, len(y), 500)) / len(y)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--epochs', type=int, default=4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='models/fmnist-resnet')
    p.add_argument('--fixture')
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    if a.fixture:
        os.makedirs(a.fixture, exist_ok=True)
        model = Tiny()
        # Non-trivial batch-norm statistics, so the test sees them.
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 2.0)
        model.eval()
        x = torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            logits = model(x)
        export(model, os.path.join(a.fixture, 'model.onnx'), (1, 1, 12, 12))
        with open(os.path.join(a.fixture, 'expected.json'), 'w') as f:
            json.dump({'input_nchw': x.flatten().tolist(), 'shape': list(x.shape),
                       'logits': logits.flatten().tolist(), 'torch': torch.__version__}, f)
        with open(os.path.join(a.fixture, 'parry.json'), 'w') as f:
            json.dump({'bounds': [0, 1], 'layout': 'NCHW'}, f)
        return
    x, y = load('train')
    xt, yt = load('test')
    model = ResNet()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = a.epochs * (len(y) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(y))
        for i in range(0, len(y) - 127, 128):
            idx = order[i:i + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f'epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy(model, xt, yt):.4f}',
              flush=True)
    os.makedirs(a.out, exist_ok=True)
    export(model, os.path.join(a.out, 'model.onnx'), (1, 1, 28, 28))
    with open(os.path.join(a.out, 'parry.json'), 'w') as f:
        json.dump({'bounds': [0, 1], 'layout': 'NCHW', 'classNames': CLASSES}, f)
    print(json.dumps({'test_accuracy': accuracy(model, xt, yt), 'epochs': a.epochs, 'seed': a.seed,
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
