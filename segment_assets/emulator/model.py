"""The count model: a deterministic daily size series per segment, vectorised over segments.

A segment's size on a day is a pure function of (seed, list name, segment index, day), so
any page can be computed on its own without generating the whole list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_HORIZON_DAYS = 365.0
TINY_SHARE = 0.03
WEEKEND_SHARE = 0.3


def stable_hash(*parts: object) -> int:
    """A 63-bit hash of ``parts`` that is stable across processes (unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_uniform(key: int, idx: np.ndarray, day: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """Uniform (0, 1) numbers, one per (idx, day) pair, deterministic in ``key`` and ``salt``."""
    i = np.asarray(idx, dtype=np.int64).astype(np.uint64)
    d = np.asarray(day, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(key) + i * _GOLDEN)
        h = _mix(h ^ (d * _M1 + np.uint64(salt) * _GOLDEN))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def hash_normal(key: int, idx: np.ndarray, day: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """Standard normal numbers per (idx, day) pair (Box-Muller on two hashed uniforms)."""
    u1 = hash_uniform(key, idx, day, 2 * salt + 1)
    u2 = hash_uniform(key, idx, day, 2 * salt + 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class Series:
    """Per-segment parameters of one list's daily size series."""

    key: int
    origin: int
    log_base: np.ndarray
    trend: np.ndarray
    weekend_dip: np.ndarray
    noise_sd: np.ndarray

    @property
    def n(self) -> int:
        return len(self.log_base)


def make_series(seed: int, name: str, n: int, start_date: dt.date, scale: float = 1.0) -> Series:
    """Draw the parameters of ``n`` segments of the list called ``name``.

    Base sizes are lognormal (median about 9,000, most between 500 and 200,000) with a
    few tiny segments under 50 users; each segment has a slow bounded trend, small daily
    noise and, for some, a weekend dip.
    """
    key = stable_hash(seed, name)
    rng = np.random.default_rng(np.random.SeedSequence([seed, key]))
    log_base = rng.normal(np.log(9000.0 * scale), 1.25, n).clip(np.log(60.0), np.log(2.5e6))
    tiny = rng.random(n) < TINY_SHARE
    log_base = np.where(tiny, np.log(rng.uniform(3.0, 49.0, n)), log_base)
    trend = rng.normal(0.0, 0.0012, n)
    dip = np.where(rng.random(n) < WEEKEND_SHARE, rng.uniform(0.03, 0.12, n), 0.0)
    noise_sd = rng.uniform(0.002, 0.015, n)
    return Series(key, start_date.toordinal(), log_base, trend, dip, noise_sd)


def expected(series: Series, idx: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    """Unrounded sizes of segments ``idx`` on day ordinals ``day`` (scalar or per segment)."""
    idx = np.asarray(idx, dtype=np.int64)
    day_arr = np.broadcast_to(np.asarray(day, dtype=np.int64), idx.shape)
    t = (day_arr - series.origin).astype(np.float64)
    weekend = ((day_arr + 6) % 7) >= 5
    log_c = (
        series.log_base[idx]
        + series.trend[idx] * _HORIZON_DAYS * np.tanh(t / _HORIZON_DAYS)
        + np.log1p(-series.weekend_dip[idx] * weekend)
        + series.noise_sd[idx] * hash_normal(series.key, idx, day_arr)
    )
    return np.exp(log_c)


def to_counts(values: np.ndarray) -> np.ndarray:
    """Round model values to non-negative integer counts."""
    return np.maximum(np.rint(values), 0).astype(np.int64)
