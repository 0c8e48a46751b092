"""PLACEHOLDER: being written; replace this whole file."""


def scatter(*args, **kwargs):
    raise NotImplementedError('scatter')


def scatter_add(*args, **kwargs):
    raise NotImplementedError('scatter_add')


def scatter_reduce(*args, **kwargs):
    raise NotImplementedError('scatter_reduce')

