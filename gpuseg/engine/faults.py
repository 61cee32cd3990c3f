"""A test-only seam for fault injection: named points where a test may stop a run as a kill would.

Production code calls :func:`point` at moments where a kill is worth testing (after a block
is written, inside a commit). Nothing happens unless a test has set :data:`hook`, so the hot
path reads no environment and costs one attribute lookup.
"""

from __future__ import annotations

from collections.abc import Callable

hook: Callable[[str], None] | None = None


def point(name: str) -> None:
    """Give the test hook, if any, the chance to stop the run at ``name``."""
    if hook is not None:
        hook(name)
