import os

import torch

# Two pytest-xdist workers on two cores: one torch thread each, or the OpenMP pools of the two
# processes fight over the cores and tiny ops take milliseconds instead of microseconds.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
