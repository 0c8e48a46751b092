"""PLACEHOLDER: being written; replace this whole file."""


def main(argv=None):
    raise NotImplementedError("demo")
