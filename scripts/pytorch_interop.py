#!/usr/bin/env python3
"""Checks that plinth checkpoints and PyTorch state_dicts are interchangeable.

  (i)  plinth -> PyTorch: the network described by CKPT's metadata, built in PyTorch with
       CKPT's weights and buffers, gives the logits `plinth predict --logits` prints for the
       first --limit test images (max abs difference <= --tolerance); with --test-accuracy
       also the test accuracy `plinth eval` reports, on all test images.
  (ii) PyTorch -> plinth: a PyTorch --model (default: the seed CNN) trained for --steps
       steps, saved as a bare safetensors state_dict (no plinth metadata, running statistics
       included), gives the logits `plinth predict --logits --model MODEL` prints for the
       first --limit test images (max abs difference <= --tolerance), and the same test
       accuracy from `plinth eval --model MODEL` as from PyTorch (within --max-diff-images).
  --steps-from DIR instead: plinth's training steps, saved by the test `interop: a residual
       model trains step by step as in PyTorch` (DIR/model.json, the batches, the weights
       before and after every step, the losses), repeated in PyTorch from the same weights:
       every step's loss, and every parameter and buffer after it, within fp32 tolerance.

All build the PyTorch network from what `plinth layers --model FILE --json` prints: each
node's inputs, how it merges them (sum or cat), its torch.nn module and its activation, so
this script has no code for any layer type.

Exits non-zero with a one-line reason on any mismatch. Runs with Debian's torch 1.13
(/usr/bin/python3, apt-get install python3-torch); reads safetensors and IDX itself, so it
needs only torch and numpy.

  /usr/bin/python3 scripts/pytorch_interop.py runs/seed_cnn.safetensors
  /usr/bin/python3 scripts/pytorch_interop.py runs/resnet.safetensors --test-accuracy \
      --model models/resnet_small.json
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
    """float32 and int64 tensors, no metadata: what `safetensors.torch.save_file(state_dict)`
    writes (a BatchNorm's num_batches_tracked is int64)."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        dtype = ("I64", "<i8") if array.dtype == np.int64 else ("F32", "<f4")
        blob = np.ascontiguousarray(array, dtype=dtype[1]).tobytes()
        header[name] = {"dtype": dtype[0], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
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
    """plinth's input: (pixel / 255 - mean) / std, NCHW; mean and std are one number or one
    per channel (a checkpoint's metadata holds a list)."""
    x = pixels.astype(np.float32) / np.float32(255)
    x = x[:, None, :, :] if x.ndim == 3 else x
    per_channel = lambda v: np.asarray(v, dtype=np.float32).reshape(-1, 1, 1)
    return torch.from_numpy((x - per_channel(mean)) / per_channel(std))


# --- the network a plinth model file describes, in PyTorch ---

def merge(how, inputs):
    """A node's inputs combined as its description says: "sum" in order, or "cat" on dim 1."""
    if how == "sum":
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total
    if how == "cat":
        return torch.cat(inputs, dim=1)
    if how is None and len(inputs) == 1:
        return inputs[0]
    fail(f"unknown merge {how!r} of {len(inputs)} inputs")


class PlinthModel(nn.Module):
    """The graph `plinth layers --model FILE --json` describes: each node's inputs merged
    as it says, then its module torch.nn.<module>(*args, **kwargs), registered under the
    node's name so that parameter and buffer names are plinth's (conv1.weight,
    bn1.running_mean, ...), then torch.nn.<activation>(). Nodes run in order, each fed the
    outputs it names. The output is logits: a softmax output layer's softmax is fused with
    plinth's loss, as `predict --logits` prints."""

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
        self.check_state()

    def check_state(self):
        """Every parameter and buffer plinth declares, with its shape, and no other."""
        ours = {k: list(v.shape) for k, v in self.state_dict().items()}
        theirs = {t["name"]: t["shape"] for node in self.nodes
                  for t in node["parameters"] + node.get("buffers", [])}
        if ours != theirs:
            fail(f"the PyTorch modules' parameters and buffers {ours} differ from plinth's {theirs}")

    def forward(self, x):
        values = {"input": x}
        for node in self.nodes:
            name = node["name"]
            y = merge(node["torch"].get("merge"), [values[i] for i in node["inputs"]])
            if node["torch"]["module"] is not None:
                y = getattr(self, name)(y)
            values[name] = self.activations[name](y) if name in self.activations else y
        return values[self.output]


def build_model(args, model_file):
    """The PyTorch model of a plinth model file."""
    out = run_plinth(args, ["layers", "--json", "--model", model_file])
    return PlinthModel(json.loads(out))


def keras_init(model, seed):
    """plinth's initialisation: each parameter uniform in +-init_limit (Glorot for weights),
    or, where that is 0, init_value (zeros for biases, ones for BatchNorm's weight), from
    torch's generator. Buffers keep PyTorch's starting values, which are plinth's."""
    torch.manual_seed(seed)
    specs = {p["name"]: p for node in model.nodes for p in node["parameters"]}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            limit = specs[name]["init_limit"]
            if limit == 0:
                parameter.fill_(specs[name].get("init_value", 0))
            else:
                parameter.uniform_(-limit, limit)


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


def predicted_classes(model, x):
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]).numpy()


def compare_logits(args, model, test, norm, plinth_options, what):
    """PyTorch's logits (eval mode) for the first --limit test images against the ones
    `plinth predict --json --logits` prints with plinth_options; fails above --tolerance."""
    model.eval()
    with torch.no_grad():
        ours = model(images_tensor(test[0][:args.limit], norm["mean"], norm["std"])).numpy()
    out = run_plinth(args, ["predict", "--json", "--logits", "--limit", str(args.limit), "--images",
                            args.images, "--device", args.device] + plinth_options)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    theirs = np.array([r["logits"] for r in rows], dtype=np.float32)
    if theirs.shape != ours.shape:
        fail(f"{what}: plinth predict gave logits of shape {theirs.shape}, PyTorch {ours.shape}")
    diff = float(np.abs(theirs - ours).max())
    print(f"{what}, {args.limit} test images: max abs logit difference {diff:.3g} "
          f"(tolerance {args.tolerance:g})")
    if not diff <= args.tolerance:
        fail(f"{what}: logits differ by {diff:.3g} > {args.tolerance:g}")


def plinth_to_pytorch(args, test, workdir):
    """(i): plinth's logits for CKPT against PyTorch's, same weights, same inputs; with
    --test-accuracy, both engines' accuracy on the whole test set."""
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
    compare_logits(args, model, test, norm, ["--checkpoint", args.checkpoint],
                   f"(i)  plinth -> PyTorch: {args.checkpoint} ({spec.get('name', '?')})")
    if args.test_accuracy:
        images, labels = test[0], test[1].astype(np.int64)
        # plinth eval keeps to the classes the run trained on (its config's "classes"), with
        # classes[i] relabelled as i.
        classes = json.loads(metadata.get("config", "{}")).get("classes")
        if classes:
            keep = np.isin(labels, classes)
            images = images[keep]
            labels = np.array([classes.index(int(label)) for label in labels[keep]], dtype=np.int64)
        correct = int((predicted_classes(model, images_tensor(images, norm["mean"], norm["std"]))
                       == labels).sum())
        result = json.loads(run_plinth(args, ["eval", "--json", "--checkpoint", args.checkpoint,
                                              "--device", args.device, "--data", args.data]))
        plinth_correct = round(result["accuracy"] * result["count"])
        print(f"     test accuracy: PyTorch {correct / len(labels):.4f} ({correct}/{len(labels)}), "
              f"plinth eval {result['accuracy']:.4f} ({plinth_correct}/{result['count']})")
        if result["count"] != len(labels) or abs(plinth_correct - correct) > args.max_diff_images:
            fail(f"test accuracies differ by {abs(plinth_correct - correct)} images > {args.max_diff_images}")


def pytorch_to_plinth(args, train, test, workdir):
    """(ii): a PyTorch-trained --model, saved as a bare state_dict, evaluated by both."""
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
    correct = int((predicted_classes(model, x_test) == y_test).sum())

    path = os.path.join(workdir, "torch.safetensors")
    write_safetensors(path, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    compare_logits(args, model, test, {"mean": 0.0, "std": 1.0},
                   ["--model", args.model, "--checkpoint", path],
                   f"(ii) PyTorch -> plinth: {os.path.basename(args.model)} trained {args.steps} steps")
    out = run_plinth(args, ["eval", "--json", "--model", args.model, "--checkpoint", path,
                            "--device", args.device, "--data", args.data])
    result = json.loads(out)
    plinth_correct = round(result["accuracy"] * result["count"])
    print(f"     test accuracy PyTorch {correct / len(y_test):.4f} ({correct}/{len(y_test)}), "
          f"plinth eval {result['accuracy']:.4f} ({plinth_correct}/{result['count']})")
    if result["count"] != len(y_test):
        fail(f"plinth evaluated {result['count']} images, PyTorch {len(y_test)}")
    if abs(plinth_correct - correct) > args.max_diff_images:
        fail(f"accuracies differ by {abs(plinth_correct - correct)} images > {args.max_diff_images}")


def relative_difference(ours, theirs):
    """max |ours - theirs| over max |theirs| (at least 1e-3, so that a tensor near zero is
    held to an absolute 1e-3 times the tolerance)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-3)) if ours.size else 0.0


def steps_from(args):
    """plinth's training steps saved in args.steps_from, repeated in PyTorch."""
    d = args.steps_from
    with open(os.path.join(d, "model.json")) as f:
        spec = json.load(f)
    with open(os.path.join(d, "losses.json")) as f:
        losses = json.load(f)
    opt = spec["optimizer"]
    if opt.get("type") != "sgd":
        fail(f"{d}/model.json: the step-by-step check repeats plinth's sgd only, got {opt.get('type')}")
    model = build_model(args, os.path.join(d, "model.json"))
    load_state(model, read_safetensors(os.path.join(d, "step0.safetensors"))[0], "step0")
    optimizer = torch.optim.SGD(model.parameters(), lr=opt["lr"], momentum=opt.get("momentum", 0),
                                nesterov=opt.get("nesterov", False),
                                weight_decay=opt.get("weight_decay", 0))
    batches = read_safetensors(os.path.join(d, "batches.safetensors"))[0]
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    worst = {"loss": 0.0, "tensor": 0.0}
    for step, plinth_loss in enumerate(losses, 1):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(batches["x"][step - 1])),
                       torch.from_numpy(batches["labels"][step - 1]))
        loss.backward()
        optimizer.step()
        loss_error = abs(loss.item() - plinth_loss) / max(abs(plinth_loss), 1e-3)
        worst["loss"] = max(worst["loss"], loss_error)
        if not loss_error <= args.step_tolerance:
            fail(f"step {step}: loss PyTorch {loss.item():.8g}, plinth {plinth_loss:.8g}")
        saved = read_safetensors(os.path.join(d, f"step{step}.safetensors"))[0]
        for name, value in model.state_dict().items():
            if value.dtype == torch.int64:
                if not np.array_equal(value.numpy(), saved[name]):
                    fail(f"step {step}: {name} is {value.numpy()} in PyTorch, {saved[name]} in plinth")
                continue
            error = relative_difference(saved[name], value.detach().numpy())
            worst["tensor"] = max(worst["tensor"], error)
            if not error <= args.step_tolerance:
                fail(f"step {step}: {name} differs by {error:.3g} of its largest value "
                     f"(tolerance {args.step_tolerance:g})")
    print(f"steps: {len(losses)} training steps of {spec.get('name', '?')} in PyTorch from plinth's "
          f"weights: losses within {worst['loss']:.3g}, parameters and buffers within "
          f"{worst['tensor']:.3g} (relative; tolerance {args.step_tolerance:g})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a plinth checkpoint (plinth train --save)")
    p.add_argument("--plinth", default=os.environ.get("PLINTH", os.path.join(ROOT, "build", "plinth")),
                   help="the plinth binary (default: $PLINTH or build/plinth)")
    p.add_argument("--data", default=DATA_DIR, help="Fashion-MNIST IDX folder")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "seed_cnn.json"),
                   help="(ii): the model file trained in PyTorch")
    p.add_argument("--device", default="cpu", help="plinth's --device")
    p.add_argument("--limit", type=int, default=100, help="(i), (ii): test images whose logits are compared")
    p.add_argument("--tolerance", type=float, default=1e-4, help="(i), (ii): max abs logit difference")
    p.add_argument("--test-accuracy", action="store_true",
                   help="(i): also compare the test accuracy of both engines on all test images")
    p.add_argument("--steps", type=int, default=300, help="(ii): PyTorch training steps")
    p.add_argument("--batch-size", type=int, default=32, help="(ii): PyTorch batch size")
    p.add_argument("--max-diff-images", type=int, default=10,
                   help="(i), (ii): allowed difference in correctly classified test images (10 = 0.1 point)")
    p.add_argument("--steps-from", metavar="DIR",
                   help="repeat plinth's saved training steps in PyTorch instead of (i) and (ii)")
    p.add_argument("--step-tolerance", type=float, default=1e-4,
                   help="--steps-from: relative difference allowed in losses and tensors")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--workdir", help="where torch.safetensors and the checkpoint's model file are "
                   "written (default: a temporary folder)")
    args = p.parse_args()
    if not os.access(args.plinth, os.X_OK):
        fail(f"{args.plinth}: no plinth binary (build it with scripts/build.sh, or pass --plinth)")
    torch.set_num_threads(args.threads)
    if args.steps_from:
        steps_from(args)
        print("pytorch_interop: OK")
        return
    if not args.checkpoint:
        fail("give a checkpoint, or --steps-from DIR")
    args.images = os.path.join(args.data, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(args.images):
        fail(f"{args.images}: no Fashion-MNIST there (apt-get install dataset-fashion-mnist, or pass --data)")
    train = (read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")),
             read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")))
    test = (read_idx(args.images), read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        plinth_to_pytorch(args, test, workdir)
        pytorch_to_plinth(args, train, test, workdir)
    print("pytorch_interop: OK")


if __name__ == "__main__":
    main()
