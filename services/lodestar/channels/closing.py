"""``async with`` for provider senders: the block's end closes the sender (``aclose``)."""

from __future__ import annotations

from typing import Self


class ClosesOnExit:
    """Mixin for a class with ``async def aclose()``: ``async with sender: ...`` closes it."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
