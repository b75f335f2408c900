r"""FroFA head train-step throughput with and without feature augmentation (JSON out).

  python benchmarks/frofa.py [--grid=16 --channels=1024 --batch_size=512 --heads=16 \
      --mlp_dim=4096 --steps=10 --presets=none,brightness_c2,bc2_pc --out=result.json]

Paper size (defaults): L/16 feature grids 16x16x1024, batch 512, a MAP head of L/16 size
(16 heads, MLP 4096), AdamW.  For each FroFA preset the project's own `loss_fn` (FroFA
inside the jitted step) is compiled and timed; `overhead` is the step time relative to
'none' (the issue's target: augmentation is a small fraction of the step).  The feature
values are random normal (throughput does not depend on them).  The augmentation alone
(`augment_batch` jitted by itself) is timed as well.
"""

from __future__ import annotations

import statistics
import time

from absl import app
from absl import flags
import mfu  # benchmarks/mfu.py
import report  # benchmarks/report.py (the script's folder is on sys.path)
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxvision import projects
from jaxvision.projects.frofa import augment
from jaxvision.projects.frofa import presets

_GRID = flags.DEFINE_integer('grid', 16, 'feature grid side (sqrt N)')
_CHANNELS = flags.DEFINE_integer('channels', 1024, 'feature channels C')
_BATCH = flags.DEFINE_integer('batch_size', 512, 'batch size')
_HEADS = flags.DEFINE_integer('heads', 16, 'MAP head attention heads')
_MLP = flags.DEFINE_integer('mlp_dim', 4096, 'MAP head MLP width')
_STEPS = flags.DEFINE_integer('steps', 10, 'timed steps (after 2 warm-up steps)')
_PRESETS = flags.DEFINE_list('presets', ['none', 'brightness_c2', 'bc2_pc'], 'FroFA presets')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')


def _time(fn, *args, steps):
  out = fn(*args)
  jax.block_until_ready(out)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def bench_preset(name, feats, labels):
  project = projects.load_project('frofa')
  config = ml_collections.ConfigDict({
      'model': {'num_classes': 1000, 'num_heads': _HEADS.value, 'mlp_dim': _MLP.value,
                'pool': 'map', 'head_zeroinit': True, 'dtype_mm': 'float32'},
      'augment': presets.get(name), 'loss': {'label_smoothing': 0.0}})
  model = project.make_model(config.model)
  params = jax.jit(lambda r, f: project.init_params(model, r, {'features': f[:1]}))(
      jax.random.key(0), feats)
  params = jax.tree.map(lambda x: x.value if hasattr(x, 'value') else x, params,
                        is_leaf=lambda x: hasattr(x, 'value'))
  tx = optax.adamw(1e-3, weight_decay=1e-4)
  opt_state = tx.init(params)
  batch = {'features': feats, 'label': labels}

  @jax.jit
  def step(params, opt_state, batch, rng):  # batch an argument: no constant folding
    (loss, _), grads = jax.value_and_grad(project.loss_fn, has_aux=True)(
        params, batch, rng, model=model, config=config)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  t0 = time.perf_counter()
  compiled = step.lower(params, opt_state, batch, jax.random.key(1)).compile()
  compile_s = time.perf_counter() - t0
  step_s = _time(lambda: compiled(params, opt_state, batch, jax.random.key(1)),
                 steps=_STEPS.value)
  policy = augment.make_policy(config.augment)
  aug = jax.jit(lambda k, f: augment.augment_batch(policy, k, f)[0])
  aug_s = _time(aug, jax.random.key(2), feats, steps=_STEPS.value)
  return {'compile_s': compile_s, 'median_step_s': step_s, 'steps_per_s': 1 / step_s,
          'augment_only_s': aug_s, **mfu.utilisation(mfu.compiled_flops(compiled), step_s)}


def main(argv):
  del argv
  shape = (_BATCH.value, _GRID.value, _GRID.value, _CHANNELS.value)
  feats = jax.random.normal(jax.random.key(0), shape, jnp.float32)
  labels = jax.random.randint(jax.random.key(1), (_BATCH.value,), 0, 1000)
  results = {name: bench_preset(name, feats, labels) for name in _PRESETS.value}
  base = results.get('none', {}).get('median_step_s')
  if base:
    for r in results.values():
      r['overhead'] = r['median_step_s'] / base - 1.0
  out = {'benchmark': 'frofa', **report.machine(), 'features': list(shape),
         'map_head': {'heads': _HEADS.value, 'mlp_dim': _MLP.value}, 'presets': results}
  report.emit(out, _OUT.value)


if __name__ == '__main__':
  app.run(main)
