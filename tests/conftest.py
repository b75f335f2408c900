"""Test set-up: 8 simulated CPU devices (before JAX is first used), quiet logs, fast compiles.

The suite is dominated by XLA compilation of small programs, so two settings trade
generated-code speed for compile time (tests check values, not speed; benchmarks/ does
not use them):
- LLVM optimisation level 0 for the CPU backend (`--xla_backend_optimization_level=0`)
  and XLA:CPU's classic fusion path instead of its fusion emitters, which compile slower
  (`--xla_cpu_use_fusion_emitters=false`);
- a persistent compilation cache shared by the whole session and by the binaries the
  tests start as subprocesses (the same train step is compiled again by every resumed
  run). Set JAXVISION_TEST_FULL_OPT=1 to test with the default optimisation level.
Data that projects build once and cache (embedded benchmarks, backbones) goes to a fresh
folder of this process, not the user's ~/.cache/jaxvision: the tests start from nothing,
as on a new machine, and parallel workers (pytest -n) do not share it.
"""

import atexit
import os
import shutil
import tempfile


def _scratch(prefix: str) -> str:
  path = tempfile.mkdtemp(prefix=prefix)
  atexit.register(shutil.rmtree, path, ignore_errors=True)
  return path


os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
_flags = [os.environ.get('XLA_FLAGS', ''), '--xla_force_host_platform_device_count=8']
if not os.environ.get('JAXVISION_TEST_FULL_OPT'):
  _flags += ['--xla_backend_optimization_level=0', '--xla_cpu_use_fusion_emitters=false']
os.environ['XLA_FLAGS'] = ' '.join(f for f in _flags if f)
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _scratch('jaxvision_test_xla_cache_')
os.environ['JAXVISION_CACHE'] = _scratch('jaxvision_test_cache_')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '-1')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_num_cpu_devices', 8)
