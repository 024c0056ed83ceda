#!/usr/bin/env python3
"""PyTorch CPU baseline for ddpm-cl's `small` preset (reference figures only).

    pip install torch diffusers
    python3 scripts/bench-pytorch.py [--model small|cifar10] [--threads 2] [--batch 64] [--json out.json]

Measures, on CPU with torch.set_num_threads(--threads):
  (a) one training step (UNet forward, MSE loss vs. the noise, backward, AdamW
      step) at --batch images: median of --steps timed steps after --warmup
      warm-up steps, reported as images/s;
  (b) one sampling forward pass (no_grad, eval) at --batch images, i.e. one
      denoising step: images/s per denoising step;
  (c) the parameter count and the process's peak resident memory.
The model is diffusers' UNet2DModel with ddpm-cl's preset of the same name
(Sources/DDPM/Model/Presets.swift, kept equal by hand): `small` is sample_size
32, in/out 1, block_out_channels (32, 64, 64), layers_per_block 2, down
(DownBlock2D, AttnDownBlock2D, DownBlock2D), up (UpBlock2D, AttnUpBlock2D,
UpBlock2D), norm_num_groups 8, attention_head_dim 32 (2 heads at 16x16);
`cifar10` is google/ddpm-cifar10-32's configuration.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time

import torch
import torch.nn.functional as F

import diffusers
from diffusers import DDPMScheduler, UNet2DModel

SMALL = dict(
    sample_size=32,
    in_channels=1,
    out_channels=1,
    block_out_channels=(32, 64, 64),
    layers_per_block=2,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=8,
    attention_head_dim=32,
)

CIFAR10 = dict(
    sample_size=32,
    in_channels=3,
    out_channels=3,
    block_out_channels=(128, 256, 256, 256),
    layers_per_block=2,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=32,
    norm_eps=1e-6,
    attention_head_dim=None,
    downsample_padding=0,
    flip_sin_to_cos=False,
    freq_shift=1,
)

PRESETS = {"small": SMALL, "cifar10": CIFAR10}


def timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(PRESETS), default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = PRESETS[args.model]
    model = UNet2DModel(**config)
    n_params = sum(p.numel() for p in model.parameters())
    sched = DDPMScheduler(num_train_timesteps=1000)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    b = args.batch
    c = config["in_channels"]
    x0 = torch.randn(b, c, 32, 32).clamp(-1, 1)

    def train_step():
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (b,))
        xt = sched.add_noise(x0, noise, t)
        pred = model(xt, t).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    train_times = timed(train_step, args.warmup, args.steps)

    model.eval()
    xs = torch.randn(b, c, 32, 32)

    def sample_step():
        with torch.no_grad():
            model(xs, torch.tensor(500)).sample

    sample_times = timed(sample_step, args.warmup, args.steps)

    tr = statistics.median(train_times)
    sa = statistics.median(sample_times)
    res = {
        "model": args.model,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": n_params,
        "batch": b,
        "threads": args.threads,
        "train_step_s_median": tr,
        "train_step_s_all": train_times,
        "train_img_per_s": b / tr,
        "train_img_per_s_best": b / min(train_times),
        "sample_forward_s_median": sa,
        "sample_forward_s_all": sample_times,
        "sample_img_per_s_per_step": b / sa,
        "sample_img_per_s_per_step_best": b / min(sample_times),
        "loadavg_1min_at_end": os.getloadavg()[0],
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    print(f"params: {n_params}")
    print(f"train: {tr:.3f} s/step at batch {b} -> {b / tr:.1f} img/s (threads={args.threads})")
    print(f"sample: {sa:.3f} s/forward at batch {b} -> {b / sa:.1f} img/s per denoising step")
    print(f"(best step: train {b / min(train_times):.1f} img/s, sample {b / min(sample_times):.1f} img/s; "
          f"1-min load average {os.getloadavg()[0]:.2f} - other processes distort the figures)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
