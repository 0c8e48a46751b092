"""ToMe's per-layer schedule of the number of merged tokens (``parse_r``)."""

from __future__ import annotations

from jgather import _checks


def r_schedule(num_layers: int, r: int | tuple[int, float] | list[int]) -> list[int]:
    """The number of tokens each layer merges: ToMe's ``parse_r``.

    ``r`` is one of ToMe's three forms: an int (the same ``r`` in every layer); a pair
    ``(r, inflection)`` with ``inflection`` in ``[-1, 1]``: a linear schedule from
    ``int(r * (1 - inflection))`` to ``2 * r`` minus that, each value truncated to an int
    (``(r, -1)`` is ToMe's decreasing schedule, ``(r, 0)`` a constant one); or a list, one
    value per layer, padded with zeros to ``num_layers`` (a longer list is returned whole, as
    in ToMe). A Python function for building models: the values fix shapes.

    Args:
      num_layers: number of layers, ``>= 1``. (ToMe divides by ``num_layers - 1``, so it
        fails on one layer with an int or a pair; here one layer gets ``int(r * (1 -
        inflection))``.)
      r: an int, a pair ``(int, float)``, or a list of ints.

    Returns:
      A list of ints.

    Raises:
      TypeError: ``r`` is none of the three forms.
      ValueError: ``num_layers < 1``.

    Example:
      >>> from jgather import tokens
      >>> tokens.r_schedule(4, 8)
      [8, 8, 8, 8]
      >>> tokens.r_schedule(4, (8, -1.0))
      [16, 10, 5, 0]
    """
    fn = "r_schedule"
    num_layers = _checks.static_int(fn, "num_layers", num_layers, minimum=1, what="the schedule")
    if isinstance(r, list):
        values = [
            _checks.static_int(fn, f"r[{i}]", v, what="a layer's tokens") for i, v in enumerate(r)
        ]
        return values + [0] * (num_layers - len(values))
    inflect = 0.0
    if isinstance(r, tuple):
        if len(r) != 2:
            raise TypeError(f"{fn}: r as a tuple must be (r, inflection), got {r!r}.")
        r, inflect = r
        inflect = _checks.static_float(fn, "inflection", inflect, what="the schedule")
    r = _checks.static_int(fn, "r", r, what="the schedule")
    min_val = int(r * (1.0 - inflect))
    max_val = 2 * r - min_val
    if num_layers == 1:
        return [min_val]
    step = (max_val - min_val) / (num_layers - 1)
    return [int(min_val + step * i) for i in range(num_layers)]
