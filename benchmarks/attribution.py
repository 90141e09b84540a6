"""Attribution speed and agreement: ours against Captum on the same model and rows, in one run.

    python benchmarks/attribution.py [--rows 1000] [--steps 64] [--repeats 15] [--threads N]

Prints a markdown table: per method, wall-clock time per call, median (min, max) over ``--repeats``
runs after one warm-up, for ours and Captum; the speed-up (median / median); and the largest absolute
difference between the two, per raw feature (Captum's canonical columns summed per block). Model: the
bundled German default network (63 canonical inputs, 40x40 ReLU, float64); baseline: the training mean.
Captum's DeepLift gets a copy of the network with plain ``nn.ReLU`` modules (it picks rules by exact type).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable import attribute, datasets
from actionable.attribution import per_raw_feature, training_mean
from actionable.models import layers as L


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    result = call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def cell(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{statistics.median(ms):.2f} ({min(ms):.2f}, {max(ms):.2f})"


def plain(network: nn.Sequential) -> nn.Sequential:
    swap = {L.ReLU: nn.ReLU, L.Sigmoid: nn.Sigmoid, L.Tanh: nn.Tanh}
    return nn.Sequential(*[swap[type(m)]() if type(m) in swap else m for m in network])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from captum import __version__ as captum_version
    from captum.attr import DeepLift, InputXGradient, IntegratedGradients, Saliency

    warnings.filterwarnings("ignore", category=UserWarning)
    data = datasets.load("german")
    model, schema = data.model, data.schema
    X = data.frame.iloc[: args.rows]
    x = schema.encode(X)
    mean = training_mean(schema, data.X_train)
    b = torch.as_tensor(mean)[None].expand_as(x).contiguous()
    target = 1  # the logit of "good"
    lift_net = plain(model.network)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "gradient",
            lambda: attribute(model, x, "gradient"),
            lambda: Saliency(model).attribute(x, target=target, abs=False),
        ),
        (
            "gradient_x_input",
            lambda: attribute(model, x, "gradient_x_input"),
            lambda: InputXGradient(model).attribute(x, target=target),
        ),
        (
            f"integrated_gradients ({args.steps} steps, Gauss-Legendre)",
            lambda: attribute(model, x, "integrated_gradients", baseline=mean, steps=args.steps),
            lambda: IntegratedGradients(model).attribute(x, b, target=target, n_steps=args.steps),
        ),
        (
            "deeplift (rescale)",
            lambda: attribute(model, x, "deeplift", baseline=mean),
            lambda: DeepLift(lift_net).attribute(x, b, target=target),
        ),
    ]
    threads = torch.get_num_threads()
    print(
        f"# Attribution: ours vs Captum {captum_version}, German default model, {len(X)} rows\n\n"
        f"Machine: {cpu()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({threads} threads), CPU, float64, load average {os.getloadavg()[0]:.1f} at the "
        f"start (a shared machine). Date: {datetime.date.today().isoformat()}. "
        f"Times in ms per call: median (min, max) of {args.repeats} runs after one warm-up.\n"
    )
    print("| method | ours ms | Captum ms | speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    for name, ours_call, captum_call in cases:
        ours_times, ours = timed(ours_call, args.repeats)
        captum_times, theirs = timed(captum_call, args.repeats)
        difference = np.abs(ours.values - per_raw_feature(schema, theirs.detach()).numpy()).max()
        speedup = statistics.median(captum_times) / statistics.median(ours_times)
        print(f"| {name} | {cell(ours_times)} | {cell(captum_times)} | {speedup:.1f}x | {difference:.1e} |")


if __name__ == "__main__":
    main()
