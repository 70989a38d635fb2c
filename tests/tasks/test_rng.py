"""Counter-based noise: uniform and normal draws with the right moments, keyed by slot."""

from __future__ import annotations

import torch

from autometa.tasks import _rng


def test_uniform_and_normal_moments():
    keys = _rng.slot_keys(_rng.key_from_seed(0), torch.arange(100), torch.arange(100))
    u = _rng.uniform(keys, 3, 10)
    assert u.shape == (100, 100, 10) and u.dtype == torch.float32
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002
    z = _rng.normal(keys, 3, 4)
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1) < 0.02
    # draws at neighbouring counters and slots are uncorrelated
    v = _rng.uniform(keys, 4, 10)
    assert abs(torch.corrcoef(torch.stack([u.flatten(), v.flatten()]))[0, 1].item()) < 0.01


def test_slot_keys_do_not_depend_on_the_batch_shape():
    root = _rng.key_from_seed(42)
    big = _rng.slot_keys(root, torch.arange(7), torch.arange(5))
    small = _rng.slot_keys(root, torch.tensor([6]), torch.tensor([4]))
    assert big[6, 4] == small[0, 0]
    assert len(torch.unique(big)) == 35
    assert _rng.key_from_seed(1) != _rng.key_from_seed(2)
