"""`fast_jit`: jax.jit whose XLA compilation skips the CPU backend's optimisations.

Most of the FroFA tests' time is XLA compiling many small programs on CPU.  What a
program computes does not depend on these passes (no fast-math either way), only how
fast it runs, so tests that check values compile with them off (about 4x faster to
compile).  The binary, the study and the benchmark always use the default pipeline.
"""

from __future__ import annotations

import jax

CPU_FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False}


def fast_jit(fn, **kwargs):
  options = CPU_FAST_COMPILE if jax.default_backend() == 'cpu' else None
  return jax.jit(fn, compiler_options=options, **kwargs)
