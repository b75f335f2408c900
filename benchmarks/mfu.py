"""Model-FLOPs utilisation for every benchmark: FLOPs from XLA's cost analysis of the
compiled function, achieved FLOP/s, and the fraction of a matmul peak measured on the
same device in the same sitting (a large square matmul: the best the device does on the
op that dominates these models; on a shared CPU the peak moves with the load, so the
ratio of two numbers measured together is steadier than either)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

_PEAKS = {}


def measure_matmul_peak(dtype: str = 'float32', n: int | None = None, repeats: int = 5) -> float:
  """FLOP/s of an n x n x n matmul on the default device (best of `repeats`; cached)."""
  on_cpu = jax.devices()[0].platform == 'cpu'
  n = n or (2048 if on_cpu else 8192)
  key = (str(dtype), n)
  if key not in _PEAKS:
    a = jnp.ones((n, n), dtype)
    b = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float('inf')
    for _ in range(repeats):
      t0 = time.perf_counter()
      f(a, b).block_until_ready()
      best = min(best, time.perf_counter() - t0)
    _PEAKS[key] = 2 * n ** 3 / best
  return _PEAKS[key]


def compiled_flops(compiled) -> float:
  """FLOPs of one call of a `jax.stages.Compiled`, from XLA's cost analysis (nan if none)."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get('flops', float('nan')))


def utilisation(flops: float, seconds: float, dtype: str = 'float32') -> dict:
  """{flops, achieved_flops_per_s, matmul_peak_flops_per_s, mfu} for one timed call."""
  peak = measure_matmul_peak(dtype)
  achieved = flops / seconds
  return {'flops': flops, 'achieved_flops_per_s': achieved, 'matmul_peak_flops_per_s': peak,
          'matmul_dtype': str(dtype), 'mfu': achieved / peak,
          'device': jax.devices()[0].device_kind}
