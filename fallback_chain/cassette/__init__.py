"""Record real vendor traffic into cassettes, and read them back (replay, corpus).

    from fallback_chain import Chain
    from fallback_chain.cassette import Recorder

    chain = Chain([...], recorder=Recorder("cassettes/"))

One JSON file per vendor exchange: the request's shape (model, size, n, options; the prompt
only with ``include_prompt=True``), the response status, the headers that matter
(``Retry-After``, rate-limit headers, the content type) and the body with every image replaced
by a placeholder naming its format and size, and every key, token and signed URL scrubbed.
``Emulator(replay="cassettes/")`` answers with them again; ``fallback-chain cassette
to-corpus`` turns one into a corpus file. See ``docs/testing.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .format import Cassette, load_cassettes
    from .recorder import Recorder

__all__ = ["Cassette", "Recorder", "load_cassettes"]

_WHERE = {"Cassette": ".format", "load_cassettes": ".format", "Recorder": ".recorder"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
