"""A small trainer that leaks its arguments the way training code does:
W&B (offline) with its config and console capture, TensorBoard text and
hparams (tensorboardX), logging, a checkpoint in torch.save's zip layout and
a safetensors file with metadata. With LEAK_GUARD=1 it follows the README:
st_secrets.redact.install() before wandb.init, sanitize() for what it
records. Usage: trainer.py OUTDIR (the canary comes from HF_TOKEN)."""

import argparse
import io
import json
import logging
import os
import pickle
import sys
import zipfile

import numpy as np
import wandb
from safetensors.numpy import save_file
from tensorboardX import SummaryWriter

guard = os.environ.get("LEAK_GUARD") == "1"
if guard:
    from st_secrets import redact

    redact.install()
    sanitize = redact.sanitize
else:

    def sanitize(obj):
        return obj


def torch_save_layout(obj, path):
    """What torch.save writes (its zip layout since PyTorch 1.6): the pickle
    as archive/data.pkl, stored uncompressed, with the byteorder and version
    records. torch itself is a 514 MiB wheel plus CUDA packages: too large
    for the test command's download budget."""
    buf = io.BytesIO()
    pickle.dump(obj, buf, protocol=2)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        z.writestr("archive/.data/serialization_id", "0123456789")


out = sys.argv[1]
parser = argparse.ArgumentParser()
parser.add_argument("--hub_token", default=os.environ.get("HF_TOKEN"))
parser.add_argument("--learning_rate", type=float, default=1e-4)
parser.add_argument("--output_dir", default=out)
args = parser.parse_args([])

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
run = wandb.init(project="leak", mode="offline", dir=out, config=sanitize(vars(args)))
print(f"training with {args}", flush=True)
logging.info("arguments: %s", args)
print("token tail:", args.hub_token[-12:] if False else "", file=sys.stderr)

writer = SummaryWriter(os.path.join(out, "tensorboard"))
writer.add_text("args", str(sanitize(args)), 0)
hparams = {k: v for k, v in sanitize(vars(args)).items() if isinstance(v, (str, float))}
writer.add_hparams(hparams, {"loss": 0.5})
for step in range(3):
    run.log({"loss": 1.0 / (step + 1)})
    writer.add_scalar("loss", 1.0 / (step + 1), step)
writer.close()

os.makedirs(os.path.join(out, "checkpoint"), exist_ok=True)
torch_save_layout(sanitize(args), os.path.join(out, "checkpoint", "training_args.bin"))
save_file(
    {"w": np.zeros((4, 4), dtype=np.float32)},
    os.path.join(out, "checkpoint", "model.safetensors"),
    metadata={"args": json.dumps(sanitize(vars(args)))},
)
run.finish()
