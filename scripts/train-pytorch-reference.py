#!/usr/bin/env python3
"""The PyTorch reference for "best samples per minute": diffusers' recipe on the same machine.

    .build/torch-venv/bin/python scripts/train-pytorch-reference.py --minutes 10 --out runs/torch-ref
    .build/release/ddpm-cl fid runs/torch-ref/samples-ddim-50.npy --data fashion-mnist:test --num-images 500

Trains diffusers' UNet2DModel on Fashion-MNIST (28x28 padded to 32x32 with the background, as
ddpm-cl does) for a wall-clock budget, then draws --samples images with each of --solvers from the EMA
weights and writes them as uint8 N x 1 x 32 x 32 .npy files, which `ddpm-cl fid` reads.

The recipe is the one measured in issue 17: ddpm-cl's `small` layout with one layer per block
(1.1 M parameters), batch 64, AdamW at 1e-3, and otherwise diffusers' examples/unconditional_image_
generation/train_unconditional.py: AdamW betas (0.95, 0.999), weight decay 1e-6, eps 1e-8, linear
beta schedule over 1000 steps, epsilon target, random horizontal flip, EMA with inv_gamma 1 and power
3/4 (max 0.9999). Its 500-step warmup would not end within 10 minutes at this batch on 2 cores, so
the warmup here is --warmup (100) steps, then constant.
"""

import argparse
import copy
import gzip
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DDPMPipeline, DPMSolverMultistepScheduler, UNet2DModel

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def load_fashion_mnist(path=FASHION):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, h, w)
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1)
    return F.pad(x, (2, 2, 2, 2), value=-1.0)  # 28 -> 32, background -1


def ema_decay(step, inv_gamma=1.0, power=0.75, max_decay=0.9999):
    # diffusers' EMAModel.get_decay with use_ema_warmup.
    s = max(0, step - 1)
    if s <= 0:
        return 0.0
    return min(1 - (1 + s / inv_gamma) ** -power, max_decay)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--steps", type=int, default=0,
                   help="train this many steps instead of --minutes: on a shared machine, the steps that "
                        "--minutes gave when measured alone (PyTorch's 2 OpenMP threads slow down far more "
                        "than PoCL's work-stealing pool when other processes want the cores)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--layers-per-block", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--solvers", default="ddim:50",
                   help="comma-separated SOLVER:STEPS to sample with, ddim (eta 0), dpm++2m "
                        "(DPMSolverMultistepScheduler) or dpm++2m-dt (the same with dynamic thresholding); each writes samples-SOLVER-STEPS.npy and a grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    data = load_fashion_mnist()
    model = UNet2DModel(
        sample_size=32, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
        layers_per_block=a.layers_per_block,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, attention_head_dim=32)
    ema = copy.deepcopy(model).requires_grad_(False)
    params = sum(p.numel() for p in model.parameters())
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_at = lambda k: min(1.0, k / a.warmup) if a.warmup > 0 else 1.0
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} threads, "
          f"{params / 1e6:.2f} M parameters, batch {a.batch}, {a.minutes} minutes", flush=True)
    start = time.time()
    step = 0
    log = open(os.path.join(a.out, "log.csv"), "w")
    log.write("step,seconds,loss\n")
    while (step < a.steps) if a.steps else (time.time() - start < a.minutes * 60):
        idx = torch.randint(0, data.shape[0], (a.batch,))
        x0 = data[idx]
        flip = torch.rand(a.batch) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (a.batch,))
        xt = sched.add_noise(x0, noise, t)
        loss = F.mse_loss(model(xt, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        step += 1
        d = ema_decay(step)
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm, alpha=1 - d)
        if step % 10 == 0:
            log.write(f"{step},{time.time() - start:.1f},{loss.item():.5f}\n")
            log.flush()
    train_s = time.time() - start
    print(f"trained {step} steps in {train_s:.0f} s ({step * a.batch / train_s:.1f} img/s)", flush=True)

    # The EMA weights as a diffusers pipeline: `ddpm-cl sample` reads it, so both models can also be
    # sampled by the same solver code.
    DDPMPipeline(unet=ema, scheduler=sched).save_pretrained(os.path.join(a.out, "pipeline"))
    if a.samples == 0:
        return
    for spec in a.solvers.split(","):
        name, steps = spec.split(":")
        sample(ema, sched, name, int(steps), a)


def sample(ema, sched, name, steps, a):
    if name == "dpm++2m-dt":  # with dynamic thresholding (Imagen) at the 0.995 quantile
        solver = DPMSolverMultistepScheduler.from_config(sched.config, thresholding=True,
                                                         dynamic_thresholding_ratio=0.995, sample_max_value=1.0)
    else:
        solver = {"ddim": DDIMScheduler, "dpm++2m": DPMSolverMultistepScheduler}[name].from_config(sched.config)
    solver.set_timesteps(steps)
    kwargs = {"eta": 0.0} if name == "ddim" else {}
    g = torch.Generator().manual_seed(a.seed + 1)
    out = []
    start = time.time()
    with torch.no_grad():
        for first in range(0, a.samples, 100):
            x = torch.randn((min(100, a.samples - first), 1, 32, 32), generator=g)
            solver.set_timesteps(steps)  # resets the multistep solver's history
            for t in solver.timesteps:
                x = solver.step(ema(x, t).sample, t, x, **kwargs).prev_sample
            out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
    images = np.concatenate(out)
    path = os.path.join(a.out, f"samples-{name}-{steps}.npy")
    np.save(path, images)
    if len(images) >= 64:
        from PIL import Image
        grid = images[:64, 0].reshape(8, 8, 32, 32).transpose(0, 2, 1, 3).reshape(256, 256)
        Image.fromarray(grid).save(os.path.join(a.out, f"grid-{name}-{steps}.png"))
    print(f"sampled {len(images)} images with {name}-{steps} in {time.time() - start:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
