"""PLACEHOLDER: being written; replace this whole file."""


def patchify(*args, **kwargs):
    raise NotImplementedError('patchify')


def unpatchify(*args, **kwargs):
    raise NotImplementedError('unpatchify')

