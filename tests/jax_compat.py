"""Every place the tests depend on the jax version, in one module.

jgather supports the jax range in pyproject.toml; .ci/run runs the core tests on its floor.
Where jax moved an API inside that range, the fallback for older releases lives here, next to
the release that added the newer one, so raising the floor means deleting branches here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.monitoring


def duration_listener(
    listener: Callable[..., Any],
) -> tuple[Callable[..., Any], Callable[[], None]]:
    """``(to_register, remove)`` for a duration listener on any supported jax.

    ``jax.monitoring.unregister_event_duration_listener`` is newer than jax 0.8.0, the floor
    (jax 0.10 has it); where it is missing there is no public removal, so the registered
    function checks a flag that ``remove`` clears (the listener stays registered but records
    nothing). Delete the fallback when the floor reaches a release with the function.
    """
    unregister = getattr(jax.monitoring, "unregister_event_duration_listener", None)
    if unregister is not None:
        return listener, lambda: unregister(listener)
    active = [True]

    def gated(*args: Any, **kwargs: Any) -> None:
        if active[0]:
            listener(*args, **kwargs)

    return gated, lambda: active.__setitem__(0, False)
