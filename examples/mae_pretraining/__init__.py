"""A compact masked autoencoder (MAE) trained on scikit-learn's digits, built on jgather.

The example of the MAE pretraining notebook, as a package research code would import:

    patchify -> embed -> jgather.random_masking -> ViT encoder (visible tokens only)
    -> jgather.unshuffle (mask tokens back in place) -> light decoder -> jgather.mae_loss

* :mod:`~mae_pretraining.data`: scikit-learn's bundled digits (1797 grayscale 8x8 images,
  nothing downloaded), scaled to [0, 1] and split train / held-out.
* :mod:`~mae_pretraining.model`: the model in Flax NNX (``MAEConfig``, ``MAE``).
* :mod:`~mae_pretraining.masking`: jgather's masking, or the straightforward JAX port of MAE's
  code (``masking="port"`` swaps it in with everything else unchanged).
* :mod:`~mae_pretraining.train`: the train step, one ``jax.jit`` over the model's split state
  with optax; PRNG keys threaded explicitly (each step folds its number into one base key).
* :mod:`~mae_pretraining.evaluation`: held-out loss against two baselines; images to show.
* :mod:`~mae_pretraining.throughput`: train steps per second, jgather's masking vs the port.

Needs the ``train`` extra (flax, optax, scikit-learn). The package lives in the repository's
``examples/mae_pretraining/`` and is installed with jgather under the name ``mae_pretraining``.
"""

from mae_pretraining.data import load_digits_split as load_digits_split
from mae_pretraining.evaluation import evaluate as evaluate
from mae_pretraining.evaluation import normalize_patches as normalize_patches
from mae_pretraining.evaluation import reconstruct as reconstruct
from mae_pretraining.masking import MASKINGS as MASKINGS
from mae_pretraining.masking import port_random_masking as port_random_masking
from mae_pretraining.masking import port_unshuffle as port_unshuffle
from mae_pretraining.model import MAE as MAE
from mae_pretraining.model import Block as Block
from mae_pretraining.model import MAEConfig as MAEConfig
from mae_pretraining.model import sincos_pos_embed_2d as sincos_pos_embed_2d
from mae_pretraining.throughput import interleaved as interleaved
from mae_pretraining.throughput import throughput as throughput
from mae_pretraining.train import TrainResult as TrainResult
from mae_pretraining.train import init_model as init_model
from mae_pretraining.train import loss_fn as loss_fn
from mae_pretraining.train import make_optimizer as make_optimizer
from mae_pretraining.train import make_train_step as make_train_step
from mae_pretraining.train import train as train
