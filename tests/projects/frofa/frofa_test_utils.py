"""`fast_jit`: jax.jit whose XLA compilation skips the CPU backend's optimisations.

Most of the FroFA tests' time is XLA compiling many small programs on CPU.  What a
program computes does not depend on these passes (no fast-math either way), only how
fast it runs, so tests that check values compile with them off, as tests/conftest.py
does for the whole suite (LLVM level 0); these options also switch off XLA's CPU fusion
emitters (about 1.5x faster again to compile).  JAXVISION_TEST_FULL_OPT=1, the suite's
switch, compiles with the defaults.  The binary, the study and the benchmark always use
the default pipeline.
"""

from __future__ import annotations

import os

import jax

CPU_FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False}


def fast_jit(fn, **kwargs):
  fast = jax.default_backend() == 'cpu' and not os.environ.get('JAXVISION_TEST_FULL_OPT')
  return jax.jit(fn, compiler_options=CPU_FAST_COMPILE if fast else None, **kwargs)
