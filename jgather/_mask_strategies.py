"""PLACEHOLDER: being written; replace this whole file."""


def block_masking(*args, **kwargs):
    raise NotImplementedError('block_masking')


def mask_schedule(*args, **kwargs):
    raise NotImplementedError('mask_schedule')


def patch_dropout(*args, **kwargs):
    raise NotImplementedError('patch_dropout')


def running_cell_masking(*args, **kwargs):
    raise NotImplementedError('running_cell_masking')


def simmim_masking(*args, **kwargs):
    raise NotImplementedError('simmim_masking')


def tube_masking(*args, **kwargs):
    raise NotImplementedError('tube_masking')


def variable_ratio_masking(*args, **kwargs):
    raise NotImplementedError('variable_ratio_masking')

