"""``cupy.cuda.compiler``: the error a kernel that does not compile raises."""

from __future__ import annotations


class CompileException(Exception):
    """The kernel source did not compile (the double compiles it with g++; see ``_raw``)."""

    def __init__(self, msg: str, source: str, name: str, options: tuple) -> None:
        self._msg, self.source, self.name, self.options = msg, source, name, options
        super().__init__(msg)

    def get_message(self) -> str:
        return self._msg


CompileException.__module__ = "cupy.cuda.compiler"
