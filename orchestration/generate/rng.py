"""Deterministic random streams: one independent generator per (seed, day, purpose).

Keying streams by purpose means adding a new draw somewhere does not shift every
other table, so a change in one module keeps the rest of the world stable.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, purpose: str, day: int = 0) -> np.random.Generator:
    key = zlib.crc32(purpose.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, day, key])))
