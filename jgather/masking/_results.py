"""The tuple behaviour the masking results share (``MaskedTokens``, ``PaddedMaskedTokens``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Self

import jax


class TokenTuple:
    """Tuple behaviour for the masking results, over their array fields only.

    They unpack, index and count like the NamedTuple (MAE's 3-tuple) they were, while also
    carrying static facts (``num_prefix``, the kept count) that ``unshuffle`` checks against;
    the static facts are pytree metadata, so the results pass through ``jax.jit``,
    ``jax.vmap`` and ``jax.tree.map`` unchanged.
    """

    _fields: tuple[str, ...] = ()
    # Declared for the checker only (not dataclass fields here): every result type has them.
    ids_restore: jax.Array
    num_prefix: int | None

    def __iter__(self) -> Iterator[jax.Array]:
        return (getattr(self, name) for name in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, index: int | slice) -> Any:
        return tuple(self)[index]

    def _replace(self, **changes: Any) -> Self:
        # Every subclass is a dataclass; this mixin itself is not, which replace's TypeVar needs.
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @property
    def _kept_slots(self) -> int | None:
        """Static number of token slots after the prefix in ``x_masked`` (None: unknown)."""
        raise NotImplementedError
