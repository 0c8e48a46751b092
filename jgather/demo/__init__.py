"""``python -m jgather demo``: the torch.gather walk-through and MAE-style masking of a photo.

Three modules, one job each:

* ``_walkthrough``: the printed walk-through, the ``dim=1`` example on
  ``arange(24).reshape(2, 3, 4)`` (forwards with ``explain``, backwards with
  ``infer_gather``) and MAE's 16-token example;
* ``_photo`` and ``_figure``: the bundled photograph masked by each strategy, and the
  matplotlib figure of it (original | masked | visible tokens | restored by ``unshuffle``);
* ``_cli``: the argparse plumbing, the only place that turns library errors into a one-line
  message and exit status 2.

The figure needs matplotlib (``pip install "matplotlib>=3.8"``, or ``pip install ".[demo]"`` in
a clone of jgather); the rest needs only jgather's core dependencies.
"""

from jgather.demo._cli import main as main
from jgather.demo._photo import STRATEGIES as STRATEGIES
from jgather.demo._photo import MaskedImage as MaskedImage
from jgather.demo._photo import load_sample_image as load_sample_image
from jgather.demo._photo import mask_image as mask_image
from jgather.demo._walkthrough import gather_walkthrough as gather_walkthrough
from jgather.demo._walkthrough import mae_walkthrough as mae_walkthrough

__all__ = [
    "STRATEGIES",
    "MaskedImage",
    "gather_walkthrough",
    "load_sample_image",
    "mae_walkthrough",
    "main",
    "mask_image",
]
