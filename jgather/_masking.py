"""PLACEHOLDER: being written; replace this whole file."""

from typing import NamedTuple


class MaskedTokens(NamedTuple):
    x_masked: object
    mask: object
    ids_restore: object


def apply_mask(*args, **kwargs):
    raise NotImplementedError('apply_mask')


def random_masking(*args, **kwargs):
    raise NotImplementedError('random_masking')


def unshuffle(*args, **kwargs):
    raise NotImplementedError('unshuffle')

