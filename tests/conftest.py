"""Test set-up: 8 simulated CPU devices (before JAX is first used), quiet logs, fast compiles.

The suite is dominated by XLA compilation of small programs, so two settings trade
generated-code speed for compile time (tests check values, not speed; benchmarks/ does
not use them):
- LLVM optimisation level 0 for the CPU backend (`--xla_backend_optimization_level=0`);
- a persistent compilation cache shared by the whole session and by the binaries the
  tests start as subprocesses (the same train step is compiled again by every resumed
  run). Set JAXVISION_TEST_FULL_OPT=1 to test with the default optimisation level.
"""

import os
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
_flags = [os.environ.get('XLA_FLAGS', ''), '--xla_force_host_platform_device_count=8']
if not os.environ.get('JAXVISION_TEST_FULL_OPT'):
  _flags.append('--xla_backend_optimization_level=0')
os.environ['XLA_FLAGS'] = ' '.join(f for f in _flags if f)
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='jaxvision_test_xla_cache_')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '-1')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_num_cpu_devices', 8)
