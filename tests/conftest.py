"""Test session set-up: one torch thread per test worker (xdist runs two workers on two cores)."""

import torch

torch.set_num_threads(1)
