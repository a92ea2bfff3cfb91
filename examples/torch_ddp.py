#!/usr/bin/python3
"""DistributedDataParallel on Braid: the only Braid-specific lines are the import and the
backend name. Launch with torchrun (2 processes on this host):

    PYTHONPATH=build/python torchrun --nproc_per_node=2 examples/torch_ddp.py
"""
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import braid.torch  # noqa: F401  registers the "braid" backend

dist.init_process_group("braid")  # RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from torchrun
rank = dist.get_rank()
torch.manual_seed(0)
model = DDP(torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
gen = torch.Generator().manual_seed(rank)  # each rank trains on its own shard
for step in range(100):
    x = torch.randn(32, 10, generator=gen)
    loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
    opt.zero_grad()
    loss.backward()  # gradients are averaged over the ranks by Braid AllReduces
    opt.step()
if rank == 0:
    print(f"step {step}: loss {loss.item():.4f}")
dist.destroy_process_group()
