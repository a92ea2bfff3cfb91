"""`import braid.torch` registers Braid as the torch.distributed backend "braid":

    import torch.distributed as dist, braid.torch
    dist.init_process_group("braid")      # torchrun's environment, or store=/init_method=

Braid's unique id is exchanged through the process group's c10d store (torchrun's MASTER_PORT
belongs to that store); rank 0 hosts Braid's rendezvous root on an ephemeral port. The group's
timeout becomes Braid's communicator timeout. CPU tensors; see docs/frameworks.md for the list
of supported operations.
"""
import torch.distributed as _dist

from ._braid_torch import ProcessGroupBraid

__all__ = ["ProcessGroupBraid"]


def _create_process_group(store, rank, world_size, timeout):
    return ProcessGroupBraid(store, rank, world_size, timeout)


if not hasattr(_dist.Backend, "BRAID"):  # registering twice is an error in torch.
    _dist.Backend.register_backend("braid", _create_process_group)
