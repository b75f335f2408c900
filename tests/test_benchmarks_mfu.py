"""benchmarks/mfu.py: XLA's FLOP count against the closed form, and the MFU arithmetic."""

import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'benchmarks'))
import mfu  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_flops_of_a_matmul_and_utilisation():
  m, k, n = 64, 48, 32
  compiled = jax.jit(lambda a, b: a @ b).lower(jnp.ones((m, k)), jnp.ones((k, n))).compile()
  flops = mfu.compiled_flops(compiled)
  assert flops == 2 * m * k * n
  peak = mfu.measure_matmul_peak('float32', n=256, repeats=2)
  assert peak > 0
  mfu._PEAKS[('float32', 2048 if jax.devices()[0].platform == 'cpu' else 8192)] = 1e9
  out = mfu.utilisation(2e9, 4.0)
  assert out['achieved_flops_per_s'] == 5e8 and out['mfu'] == 0.5
