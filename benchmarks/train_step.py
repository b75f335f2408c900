r"""Train-step benchmark for any experiment config; prints one JSON object.

  python benchmarks/train_step.py --config=experiments/classification/digits_vit.py \
      [--config.input.batch_size=256] [--steps=20] [--out=result.json]

Reports compile time, median step time, examples/s, peak memory and model-FLOPs
utilisation: FLOPs per step from XLA's cost analysis of the compiled step, divided by
the step time and by a matmul peak measured on the same device (a large square matmul
in the model's matmul dtype).  The batch is the first real batch of the config's own
pipeline, reused every step, so input time is excluded.
"""

from __future__ import annotations

import resource
import statistics
import time

from absl import app
from absl import flags
import mfu  # benchmarks/mfu.py
import report  # benchmarks/report.py (the script's folder is on sys.path)
import jax
from ml_collections import config_flags
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision import train as train_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'experiment config', lock_config=True)
_STEPS = flags.DEFINE_integer('steps', 20, 'timed steps (after 2 warm-up steps)')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')


def peak_memory_bytes() -> tuple[int, str]:
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device peak_bytes_in_use'
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'host max RSS'


def benchmark(config, steps: int) -> dict:
  exp = train_lib.build(config)
  cfg = exp.config
  ds = exp.project.make_dataset(cfg, 'train', seed=cfg.seed, process_index=jax.process_index(),
                                process_count=jax.process_count())
  local_batch = next(iter(ds))
  with jax.set_mesh(exp.mesh):
    batch = sharding_lib.host_batch_to_global(local_batch, exp.mesh)
  state = exp.setup.init(jax.random.key(cfg.seed))

  t0 = time.perf_counter()
  compiled = exp.train_step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  flops = mfu.compiled_flops(compiled)

  for _ in range(2):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  dtype = cfg.model.get('dtype_mm', 'float32') if 'model' in cfg else 'float32'
  peak = mfu.measure_matmul_peak(dtype)
  mem, mem_kind = peak_memory_bytes()
  return {
      'config_project': cfg.project,
      **report.machine(),
      'global_batch_size': exp.batch_size,
      'num_params': int(sum(np.prod(x.shape) for x in jax.tree.leaves(state['params']))),
      'compile_s': compile_s,
      'median_step_s': step_s,
      'steps_per_s': 1 / step_s,
      'examples_per_s': exp.batch_size / step_s,
      'step_flops': flops,
      'achieved_flops_per_s': flops / step_s,
      'matmul_peak_flops_per_s': peak,
      'matmul_dtype': dtype,
      'mfu': flops / step_s / peak,
      'peak_memory_bytes': mem,
      'peak_memory_kind': mem_kind,
      'loss_after': float(metrics['loss']),
  }


def main(argv):
  del argv
  result = benchmark(_CONFIG.value, _STEPS.value)
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
