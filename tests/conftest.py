import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """CI has 2 cores; one intra-op thread keeps timings and results steady."""
    torch.set_num_threads(1)
    yield
