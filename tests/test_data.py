"""The training order: a new permutation every epoch, also under DDP's sampler wrapper."""

import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler

from numsym_pl.data import TrialDataModule


def _epoch_orders(loader, epochs=3) -> list[list[int]]:
    orders = []
    for epoch in range(epochs):
        _set_sampler_epoch(loader, epoch)  # what Lightning's fit loop calls before each epoch
        orders.append(list(iter(loader.sampler)))
    return orders


def test_single_process_order_changes_every_epoch_and_repeats_on_resume():
    loader = TrialDataModule(train_size=64, seed=3).train_dataloader()
    orders = _epoch_orders(loader)
    assert len({tuple(o) for o in orders}) == 3
    again = _epoch_orders(TrialDataModule(train_size=64, seed=3).train_dataloader())
    assert orders == again


def test_ddp_order_changes_every_epoch_on_every_rank():
    """Lightning wraps a custom sampler in DistributedSamplerWrapper under DDP; set_epoch must reach
    the wrapped sampler, or every epoch of every rank sees the same batches."""
    loader = TrialDataModule(train_size=64, seed=3).train_dataloader()
    shards = []
    for rank in range(2):
        sampler = _get_distributed_sampler(loader, shuffle=False, overfit_batches=0, num_replicas=2, rank=rank)
        wrapped = torch.utils.data.DataLoader(loader.dataset, sampler=sampler, batch_size=8)
        orders = _epoch_orders(wrapped)
        assert len({tuple(o) for o in orders}) == 3, f"rank {rank} sees the same order in two epochs"
        shards.append(orders)
    for epoch in range(3):  # the ranks split each epoch's permutation between them
        assert sorted(shards[0][epoch] + shards[1][epoch]) == list(range(64))
