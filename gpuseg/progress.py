"""Progress bars for long work, on standard error, silent when disabled."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    """A counter shown as a bar on stderr while ``enabled``.

    Examples
    --------
    >>> with Progress(3, "demo", enabled=False) as bar:
    ...     bar.update(3)
    >>> bar.done
    3
    """

    def __init__(self, total: int, desc: str, *, enabled: bool = True, unit: str = "blocks"):
        self.done = 0
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True) if enabled else None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind, *exc) -> None:
        if self._bar is not None:
            self._bar.leave = kind is None  # on an error the bar is erased: the error's one line says it all
            self._bar.close()
