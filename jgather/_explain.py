"""PLACEHOLDER: being written; replace this whole file."""


def explain(*args, **kwargs):
    raise NotImplementedError('explain')


def infer_gather(*args, **kwargs):
    raise NotImplementedError('infer_gather')

