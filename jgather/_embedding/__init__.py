"""Embedding lookups with torch semantics: ``embedding`` and ``embedding_bag``.

``embedding`` is a gather of rows (``_lookup``); ``embedding_bag`` a gather of rows followed by
a reduction over bags, handed to the scatter engine (``_bags``), or on XLA:CPU for short bags
summed slot by slot (``_slots``); ``_table`` holds what both share. Both check their
arguments at trace time and a concrete index's (and offsets') values eagerly, with torch's
rules.
"""

from jgather._embedding._bags import embedding_bag as embedding_bag
from jgather._embedding._lookup import embedding as embedding

__all__ = ["embedding", "embedding_bag"]
