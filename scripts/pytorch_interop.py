#!/usr/bin/env python3
"""Checks that plinth checkpoints and PyTorch state_dicts are interchangeable.

  (i)  plinth -> PyTorch: the network described by CKPT's metadata, built in PyTorch with
       CKPT's weights, gives the logits `plinth predict --logits` prints for the first
       --limit test images (max abs difference <= --tolerance).
  (ii) PyTorch -> plinth: a PyTorch seed CNN trained for --steps steps, saved as a bare
       safetensors state_dict (no plinth metadata), gets the same test accuracy from
       `plinth eval --model models/seed_cnn.json` as from PyTorch (within --max-diff-images).

Both build the PyTorch network from what `plinth layers --model FILE --json` prints: each
layer's torch.nn module and activation, so this script has no code for any layer type.

Exits non-zero with a one-line reason on any mismatch. Runs with Debian's torch 1.13
(/usr/bin/python3, apt-get install python3-torch); reads safetensors and IDX itself, so it
needs only torch and numpy.

  /usr/bin/python3 scripts/pytorch_interop.py runs/seed_cnn.safetensors
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def fail(message):
    sys.exit(f"pytorch_interop: FAIL: {message}")


# --- safetensors: 8-byte little-endian header size, JSON header, raw little-endian data ---

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """Returns ({name: array}, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_size])
    metadata = header.pop("__metadata__", {})
    data = memoryview(raw)[8 + header_size:]
    tensors = {}
    for name, t in header.items():
        if t["dtype"] not in DTYPES:
            fail(f"{path}: tensor {name} has dtype {t['dtype']}, which this reader does not handle")
        begin, end = t["data_offsets"]
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(t["shape"]).copy()
    return tensors, metadata


def write_safetensors(path, tensors):
    """float32 tensors only, no metadata: what `safetensors.torch.save_file(state_dict)` writes."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keeps the data 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# --- Fashion-MNIST IDX files ---

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\0\0\x08":
        fail(f"{path}: not an IDX uint8 file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def images_tensor(pixels, mean=0.0, std=1.0):
    """plinth's input: (pixel / 255 - mean) / std, NCHW."""
    x = pixels.astype(np.float32) / np.float32(255)
    x = (x - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(x[:, None, :, :] if x.ndim == 3 else x)


# --- the network a plinth model file describes, in PyTorch ---

class PlinthModel(nn.Module):
    """The graph `plinth layers --model FILE --json` describes: each node's module is
    torch.nn.<module>(*args, **kwargs) registered under the node's name, so parameter names
    are plinth's (conv1.weight, fc1.bias, ...), followed by torch.nn.<activation>(). Nodes
    run in order, each fed the outputs it names. The output is logits: a softmax output
    layer's softmax is fused with plinth's loss, as `predict --logits` prints."""

    def __init__(self, description):
        super().__init__()
        self.nodes = description["nodes"]
        self.output = description["output"]
        self.activations = {}  # no parameters, so kept out of the state_dict
        for node in self.nodes:
            name, torch_spec = node["name"], node["torch"]
            if torch_spec["module"] is not None:
                module_class = getattr(nn, torch_spec["module"], None)
                if module_class is None:
                    fail(f"layer {name}: torch.nn has no {torch_spec['module']}")
                if hasattr(self, name):
                    fail(f"layer {name}: the name is an attribute of the PyTorch model; "
                         "rename the layer")
                self.add_module(name, module_class(*torch_spec["args"], **torch_spec["kwargs"]))
            if torch_spec["activation"] is not None:
                self.activations[name] = getattr(nn, torch_spec["activation"])()
        self.check_parameters()

    def check_parameters(self):
        """Every parameter plinth declares, with its shape, and no other."""
        ours = {k: list(v.shape) for k, v in self.state_dict().items()}
        theirs = {p["name"]: p["shape"] for node in self.nodes for p in node["parameters"]}
        if ours != theirs:
            fail(f"the PyTorch modules' parameters {ours} differ from plinth's {theirs}")

    def forward(self, x):
        values = {"input": x}
        for node in self.nodes:
            name = node["name"]
            inputs = [values[i] for i in node["inputs"]]
            y = getattr(self, name)(*inputs) if node["torch"]["module"] is not None else inputs[0]
            values[name] = self.activations[name](y) if name in self.activations else y
        return values[self.output]


def build_model(args, model_file):
    """The PyTorch model of a plinth model file."""
    out = run_plinth(args, ["layers", "--json", "--model", model_file])
    return PlinthModel(json.loads(out))


def keras_init(model, seed):
    """plinth's initialisation: each parameter uniform in +-init_limit (Glorot for weights;
    0, zeros, for biases), from torch's generator."""
    torch.manual_seed(seed)
    limits = {p["name"]: p["init_limit"] for node in model.nodes for p in node["parameters"]}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if limits[name] == 0:
                parameter.zero_()
            else:
                parameter.uniform_(-limits[name], limits[name])


def load_state(model, tensors, path):
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        fail(f"{path}: names do not match the model: missing {missing}, unexpected {unexpected}")


# --- plinth CLI ---

def run_plinth(args, command):
    cmd = [args.plinth] + command
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        fail(f"`{' '.join(cmd)}` exited with {p.returncode}: {last}")
    return p.stdout


def plinth_to_pytorch(args, test_images, workdir):
    """(i): plinth's logits for CKPT against PyTorch's, same weights, same inputs."""
    tensors, metadata = read_safetensors(args.checkpoint)
    if "model" not in metadata:
        fail(f"{args.checkpoint}: no plinth metadata 'model'; give a checkpoint written by `plinth train --save`")
    spec = json.loads(metadata["model"])
    norm = json.loads(metadata.get("normalization", '{"mean": 0, "std": 1}'))
    model_file = os.path.join(workdir, "checkpoint_model.json")
    with open(model_file, "w") as f:
        json.dump(spec, f)
    model = build_model(args, model_file)
    load_state(model, tensors, args.checkpoint)
    model.eval()
    with torch.no_grad():
        ours = model(images_tensor(test_images[:args.limit], norm["mean"], norm["std"])).numpy()
    out = run_plinth(args, ["predict", "--json", "--logits", "--limit", str(args.limit), "--images",
                            args.images, "--checkpoint", args.checkpoint, "--device", args.device])
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    theirs = np.array([r["logits"] for r in rows], dtype=np.float32)
    if theirs.shape != ours.shape:
        fail(f"plinth predict gave logits of shape {theirs.shape}, PyTorch {ours.shape}")
    diff = float(np.abs(theirs - ours).max())
    print(f"(i)  plinth -> PyTorch: {args.checkpoint} ({spec.get('name', '?')}), {args.limit} test images: "
          f"max abs logit difference {diff:.3g} (tolerance {args.tolerance:g})")
    if not diff <= args.tolerance:
        fail(f"logits differ by {diff:.3g} > {args.tolerance:g}")


def pytorch_to_plinth(args, train, test, workdir):
    """(ii): a PyTorch-trained seed CNN, saved as a bare state_dict, evaluated by both."""
    model = build_model(args, args.model)
    keras_init(model, args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    x_train, y_train = images_tensor(train[0]), torch.from_numpy(train[1].astype(np.int64))
    rng = np.random.default_rng(args.seed)
    model.train()
    for _ in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(y_train), size=args.batch_size))
        optimizer.zero_grad()
        loss_fn(model(x_train[idx]), y_train[idx]).backward()
        optimizer.step()
    model.eval()
    x_test, y_test = images_tensor(test[0]), test[1].astype(np.int64)
    with torch.no_grad():
        predicted = torch.cat([model(x_test[i:i + 1000]).argmax(1) for i in range(0, len(y_test), 1000)]).numpy()
    correct = int((predicted == y_test).sum())

    path = os.path.join(workdir, "torch.safetensors")
    write_safetensors(path, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    out = run_plinth(args, ["eval", "--json", "--model", args.model, "--checkpoint", path,
                            "--device", args.device, "--data", args.data])
    result = json.loads(out)
    plinth_correct = round(result["accuracy"] * result["count"])
    print(f"(ii) PyTorch -> plinth: seed CNN trained {args.steps} steps in PyTorch; test accuracy "
          f"PyTorch {correct / len(y_test):.4f} ({correct}/{len(y_test)}), plinth eval "
          f"{result['accuracy']:.4f} ({plinth_correct}/{result['count']})")
    if result["count"] != len(y_test):
        fail(f"plinth evaluated {result['count']} images, PyTorch {len(y_test)}")
    if abs(plinth_correct - correct) > args.max_diff_images:
        fail(f"accuracies differ by {abs(plinth_correct - correct)} images > {args.max_diff_images}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a plinth checkpoint (plinth train --save)")
    p.add_argument("--plinth", default=os.environ.get("PLINTH", os.path.join(ROOT, "build", "plinth")),
                   help="the plinth binary (default: $PLINTH or build/plinth)")
    p.add_argument("--data", default=DATA_DIR, help="Fashion-MNIST IDX folder")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "seed_cnn.json"),
                   help="(ii): the model file trained in PyTorch")
    p.add_argument("--device", default="cpu", help="plinth's --device")
    p.add_argument("--limit", type=int, default=100, help="(i): test images compared")
    p.add_argument("--tolerance", type=float, default=1e-4, help="(i): max abs logit difference")
    p.add_argument("--steps", type=int, default=300, help="(ii): PyTorch training steps")
    p.add_argument("--batch-size", type=int, default=32, help="(ii): PyTorch batch size")
    p.add_argument("--max-diff-images", type=int, default=10,
                   help="(ii): allowed difference in correctly classified test images (10 = 0.1 point)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--workdir", help="where torch.safetensors and the checkpoint's model file are "
                   "written (default: a temporary folder)")
    args = p.parse_args()
    if not os.access(args.plinth, os.X_OK):
        fail(f"{args.plinth}: no plinth binary (build it with scripts/build.sh, or pass --plinth)")
    torch.set_num_threads(args.threads)
    args.images = os.path.join(args.data, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(args.images):
        fail(f"{args.images}: no Fashion-MNIST there (apt-get install dataset-fashion-mnist, or pass --data)")
    train = (read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")),
             read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")))
    test = (read_idx(args.images), read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        plinth_to_pytorch(args, test[0], workdir)
        pytorch_to_plinth(args, train, test, workdir)
    print("pytorch_interop: OK")


if __name__ == "__main__":
    main()
