"""What a video encoder learns *with labels* at a small budget: the ceiling self-supervision works under.

Trains each named encoder from random init with cross-entropy on a labelled set's train split
(Adam, batch 32, one random clip per video per epoch, a random resized crop and flip shared by the
clip's frames, its box drawn by glocal's own ``sample_resized_crop``) and scores top-1 on the eval split after every epoch (two clips per video, the full
frame, logits averaged). Every video is decoded once with glocal's PyAV reader (``read_clip``, the
whole video at ``--fps``) and kept in memory, so the epochs time the encoder, not the decoder.

Encoders (``--encoders``, comma-separated):
    r3d            R3D-10 x 0.25, stride 2 in time: the video-only and AVID/AVTS recipes' trunk, mean pool
    r3d_max        the same, max over positions
    r3d_ls1max     the same with the last stage at stride 1 (8 x 8 map at 64 px), max (AVID's recipe)
    r3d_stem1max   the same trunk with a stride-1 stem (8 x 8 map at 64 px, every stage 2x finer), max
    r2d            2-D ResNet-18 x 0.25 per frame, mean over positions and frames (VCLR's frame encoder)
    r2d_max        the same, max over positions per frame, mean over frames
    cnn2d          glocal's plain CNN (``method.backbone: cnn2d``, depth 6: 3x3 convs 32-32-64-64-128-128,
                   a 2x2 max-pool after every two) per frame, max over positions, mean over frames:
                   the layout of the small CNN issue #12 measured as reachable
    cnn2d_w0.5     the same at half width (16-32-64); ``_mean`` after the name: mean over positions

Shapes: clips ``(B, 3, T, H, W)`` float in [0, 1], normalised by the ImageNet mean/std.

Run (10 epochs at one thread, 64 px: r3d 4 min, cnn2d_w0.5 at 4 frames 2 min, cnn2d 6 min)::

    python benchmarks/supervised_ceiling.py --data data/rp_big --eval-data data/rp_dev --eval-split all \\
        --encoders r3d,r3d_ls1max --epochs 10 --eval-every 2 --threads 1
    python benchmarks/supervised_ceiling.py ... --encoders cnn2d_w0.5,r2d_max --clip-frames 4  # 2-D: 4 frames
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from glocal.data.io import read_clip  # noqa: E402
from glocal.data.manifest import read_manifest  # noqa: E402
from glocal.data.transforms import sample_resized_crop  # noqa: E402
from glocal.methods.common import ClipEncoder, VideoEncoderConfig, build_clip_encoder  # noqa: E402
from glocal.models import build_video_backbone  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def build_encoder(name: str) -> ClipEncoder:
    """The encoder named in the module docstring."""
    r3d = dict(backbone="r3d", depth=10, width_mult=0.25, temporal_stride=True)
    if name == "r3d":
        return build_clip_encoder(VideoEncoderConfig(**r3d))
    if name == "r3d_max":
        return build_clip_encoder(VideoEncoderConfig(**r3d, spatial_pool="max"))
    if name == "r3d_ls1max":
        return build_clip_encoder(VideoEncoderConfig(**r3d, spatial_pool="max", last_stride=1))
    if name == "r3d_stem1max":
        trunk = build_video_backbone("r3d", depth=10, width_mult=0.25, temporal_stride=True, stem_stride=(1, 1, 1))
        return ClipEncoder(trunk, frame_wise=False, pool="max")
    if name == "r2d":
        return build_clip_encoder(VideoEncoderConfig(backbone="resnet2d", depth=18, width_mult=0.25))
    if name == "r2d_max":
        return build_clip_encoder(VideoEncoderConfig(backbone="resnet2d", depth=18, width_mult=0.25,
                                                     spatial_pool="max"))
    if name.startswith("cnn2d"):  # cnn2d[_w<width>][_mean]: glocal's PlainCNN2D, depth 6
        parts = name.split("_")
        width = float(next((p[1:] for p in parts if p.startswith("w")), "1"))
        return build_clip_encoder(VideoEncoderConfig(backbone="cnn2d", depth=6, width_mult=width,
                                                     spatial_pool="mean" if "mean" in parts else "max"))
    raise SystemExit(f"unknown encoder {name!r}")


def load_split(root: Path, split: str, fps: float) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every video of ``split`` (``"all"``: every row) decoded whole at ``fps``: uint8
    ``(N, T, H, W, 3)``, labels ``(N,)``."""
    manifest = read_manifest(root / "manifest.csv", require_label=True)
    keep = np.flatnonzero((manifest.columns["split"] == split) | (split == "all"))
    clips = []
    for i in keep:
        duration = float(manifest.columns["duration"][i]) if "duration" in manifest.columns else 4.0
        path = Path(str(manifest.paths[i]))
        path = path if path.is_absolute() else manifest.root / path
        clips.append(read_clip(path, 0.0, int(math.floor(duration * fps + 1e-6)), fps, read_audio=False).frames)
    n_min = min(c.shape[0] for c in clips)
    video = torch.from_numpy(np.stack([c[:n_min] for c in clips]))
    return video, torch.from_numpy(manifest.labels[keep]), list(manifest.class_names)


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, T, H, W, 3)`` -> normalised float ``(B, 3, T, H, W)``."""
    x = frames.permute(0, 4, 1, 2, 3).float().div_(255.0)
    return (x - MEAN) / STD


def random_crops(x: torch.Tensor, size: int, scale: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """A random resized crop (glocal's :func:`~glocal.data.transforms.sample_resized_crop`: area
    ``scale``, aspect 3/4-4/3, 10 draws then a centre square) and a coin-flip mirror per clip, shared
    by its frames: ``(B, 3, T, H, W) -> (B, 3, T, size, size)``."""
    b, c, t, h, w = x.shape
    out = []
    for i in range(b):  # one window per clip (B boxes a step; the frames go through interpolate at once)
        y0, x0, ch, cw = sample_resized_crop(rng, h, w, scale)
        crop = x[i, :, :, y0:y0 + ch, x0:x0 + cw].transpose(0, 1)  # (T, 3, ch, cw)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        out.append(crop.transpose(0, 1))
    return torch.stack(out)


def evaluate(encoder: nn.Module, head: nn.Module, video: torch.Tensor, labels: torch.Tensor,
             clip_frames: int) -> float:
    """Top-1 with logits averaged over two clips per video (its first and last ``clip_frames``)."""
    encoder.eval()
    head.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(video), 32):
            chunk = video[i:i + 32]
            starts = (0, chunk.shape[1] - clip_frames)
            logits = sum(head(encoder(to_input(chunk[:, s:s + clip_frames]))) for s in starts)
            correct += int((logits.argmax(1) == labels[i:i + 32]).sum())
    return correct / len(video)


def train_one(name: str, train: tuple[torch.Tensor, torch.Tensor], held: tuple[torch.Tensor, torch.Tensor],
              args: argparse.Namespace, n_classes: int) -> dict:
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)  # batch order and clip starts
    crop_rng = np.random.default_rng(args.seed)  # crop windows and mirrors
    encoder = build_encoder(name)
    head = nn.Linear(encoder.out_channels, n_classes)
    params = [*encoder.parameters(), *head.parameters()]
    optim = torch.optim.Adam(params, lr=args.lr)
    video, labels = train
    rows = []
    for epoch in range(1, args.epochs + 1):
        encoder.train()
        head.train()
        t0 = time.process_time()
        w0 = time.perf_counter()
        order = torch.randperm(len(video), generator=g)
        total, count, hits = 0.0, 0, 0
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = order[i:i + args.batch_size]
            starts = torch.randint(0, video.shape[1] - args.clip_frames + 1, (len(idx),), generator=g)
            frames = torch.stack([video[j, s:s + args.clip_frames] for j, s in zip(idx.tolist(), starts.tolist())])
            x = random_crops(to_input(frames), video.shape[2], (args.crop_min, 1.0), crop_rng)
            logits = head(encoder(x))
            loss = F.cross_entropy(logits, labels[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            hits += int((logits.argmax(1) == labels[idx]).sum())
        row = {"epoch": epoch, "train_loss": round(total / count, 4), "train_top1_aug": round(hits / count, 4),
               "cpu_s": round(time.process_time() - t0, 1), "wall_s": round(time.perf_counter() - w0, 1)}
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            row["eval_top1"] = round(evaluate(encoder, head, *held, args.clip_frames), 4)
        rows.append(row)
        print(name, json.dumps(row), flush=True)
    return {"encoder": name, "params": sum(p.numel() for p in encoder.parameters()), "epochs": rows,
            "final_eval_top1": rows[-1]["eval_top1"], "best_eval_top1": max(r.get("eval_top1", 0) for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a labelled glocal dataset root (manifest.csv)")
    p.add_argument("--encoders", default="r3d,cnn2d_w0.5")
    p.add_argument("--eval-split", default="val", help="split scored after training; 'all': every row")
    p.add_argument("--eval-data", type=Path, help="score another dataset with the same classes (default: --data),"
                   " e.g. a second draw of the generator: a larger held-out set than a 60-video val split")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--eval-every", type=int, default=3)
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--clip-frames", type=int, default=16)
    p.add_argument("--crop-min", type=float, default=0.4, help="smallest crop area (the recipes' 0.4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, help="write the per-epoch rows as JSON here")
    args = p.parse_args()
    for name in args.encoders.split(","):
        build_encoder(name)  # an unknown name stops here, before any decoding
    if args.out:  # the output folder must be writable before the work starts
        args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    train_v, train_y, classes = load_split(args.data, "train", args.fps)
    held_v, held_y, held_classes = load_split(args.eval_data or args.data, args.eval_split, args.fps)
    if held_classes != classes:
        raise SystemExit(f"--eval-data has classes {held_classes}, --data {classes}: they must match")
    print(f"train {tuple(train_v.shape)}, {args.eval_split} {tuple(held_v.shape)}, {len(classes)} classes", flush=True)
    results = [train_one(n, (train_v, train_y), (held_v, held_y), args, len(classes))
               for n in args.encoders.split(",")]
    for r in results:
        print(f"{r['encoder']:14s} params {r['params']:>9,d}  final {args.eval_split} top-1 {r['final_eval_top1']:.3f}"
              f"  best {r['best_eval_top1']:.3f}  final train loss {r['epochs'][-1]['train_loss']:.3f}")
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
