r"""FlowMDM speed at paper size; prints one JSON object.

  python benchmarks/flowmdm.py [--batch=64] [--frames=200] [--steps=20] \
      [--segments=32] [--segment_frames=150] [--sample_steps=1000] [--out=result.json]

- train step: the sharded, jitted step of the one training binary (`train.build`) for
  the upstream HumanML3D model (d=512, 8 layers, 4x64 heads, 263 features, precomputed
  512-d text embeddings, horizon 150) on a batch of `batch` x `frames`; median step time
  and samples/s.  The batch is random numbers of the right shapes (speed does not depend
  on the values; the HumanML3D data is not shipped).
- composition sampling: one sequence of `segments` x `segment_frames` frames (upstream
  evaluates 32-segment compositions), `sample_steps` denoising steps (1000 upstream;
  fewer = respaced) with classifier-free guidance (two network calls per step) and the
  BPE schedule; wall time after compilation.
"""

from __future__ import annotations

import statistics
import time

from absl import app
from absl import flags
import report  # benchmarks/report.py (the script's folder is on sys.path)
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision import train as train_lib
from jaxvision.diffusion import gaussian as diffusion_lib
from jaxvision.projects.flowmdm import model as model_lib
from jaxvision.projects.flowmdm import sampling

_BATCH = flags.DEFINE_integer('batch', 64, 'global training batch')
_FRAMES = flags.DEFINE_integer('frames', 200, 'frames per training example')
_STEPS = flags.DEFINE_integer('steps', 20, 'timed train steps (after 2 warm-up steps)')
_SEGMENTS = flags.DEFINE_integer('segments', 32, 'segments of the sampled composition')
_SEG_FRAMES = flags.DEFINE_integer('segment_frames', 150, 'frames per segment')
_SAMPLE_STEPS = flags.DEFINE_integer('sample_steps', 1000, 'denoising steps (< 1000: respaced)')
_OUT = flags.DEFINE_string('out', None, 'also write the JSON here')


def paper_config(batch: int, frames: int) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict({
      'project': 'flowmdm', 'total_steps': 1000, 'seed': 0,
      'input': {'dataset': 'humanml3d', 'batch_size': batch, 'max_frames': frames},
      'model': {'input_dim': 263, 'latent_dim': 512, 'num_layers': 8, 'num_heads': 4,
                'head_dim': 64, 'ff_size': 1024, 'rpe_horizon': 150, 'text_dim': 512,
                'text_encoder': {'type': 'precomputed'}},
      'optimizer': {'name': 'adamw', 'weight_decay': 0.0, 'wd_mask': None},
      'schedule': {'type': 'constant', 'base_lr': 1e-4},
      'evals': {},
  })
  return train_lib.validate_config(c)


def random_batch(spec, seed=0):
  rng = np.random.default_rng(seed)
  out = {}
  for k, s in spec.items():
    if k == 'mask':
      out[k] = np.ones(s.shape, bool)
    elif k == 'segment_ids':
      out[k] = np.zeros(s.shape, np.int32)
    else:
      out[k] = rng.normal(size=s.shape).astype(s.dtype)
  return out


def bench_train(batch: int, frames: int, steps: int) -> dict:
  exp = train_lib.build(paper_config(batch, frames))
  state = exp.setup.init(jax.random.key(0))
  with jax.set_mesh(exp.mesh):
    data = sharding_lib.host_batch_to_global(random_batch(exp.spec), exp.mesh)
  t0 = time.perf_counter()
  compiled = exp.train_step.lower(state, data).compile()
  compile_s = time.perf_counter() - t0
  for _ in range(2):
    state, metrics = compiled(state, data)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, data)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  step = statistics.median(times)
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state['params']))
  return {'compile_s': compile_s, 'step_s_median': step, 'samples_per_s': batch / step,
          'num_params': n_params, 'batch': batch, 'frames': frames}


def bench_sampling(segments: int, segment_frames: int, sample_steps: int) -> dict:
  cfg = paper_config(1, 8).model
  from jaxvision.projects import flowmdm  # pylint: disable=g-import-not-at-top
  model = flowmdm.make_model(cfg)
  lengths = [segment_frames] * segments
  seg, mask = sampling.composition_inputs(lengths)
  t = seg.shape[1]
  text = jnp.asarray(np.random.default_rng(0).normal(size=(1, segments, 512)), jnp.float32)
  params = jax.jit(lambda r: model.init(r, jnp.zeros((1, 8, 263)), jnp.zeros((1,), jnp.int32),
                                        text=text, segment_ids=jnp.zeros((1, 8), jnp.int32),
                                        mask=jnp.ones((1, 8), bool), bpe_w=jnp.zeros(1),
                                        train=False)['params'])(jax.random.key(0))
  base = diffusion_lib.make_diffusion(1000)
  diff = base if sample_steps >= 1000 else diffusion_lib.respaced(base, str(sample_steps))

  def denoise(x, tt, te, s, m, w):
    return model.apply({'params': params}, x, tt, text_emb=te, segment_ids=s, mask=m, bpe_w=w,
                       method=model_lib.FlowMDM.denoise)

  sample = jax.jit(sampling.make_sampler(denoise, diff, num_original_steps=1000,
                                         bpe_switch_step=60, guidance_scale=2.5))
  noise = jax.random.normal(jax.random.key(1), (1, t, 263))
  args = (jax.random.key(2), noise, text, jnp.asarray(seg), jnp.asarray(mask))
  t0 = time.perf_counter()
  compiled = sample.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  jax.block_until_ready(compiled(*args))
  wall = time.perf_counter() - t0
  return {'compile_s': compile_s, 'sample_s': wall, 'frames': t, 'segments': segments,
          'denoising_steps': diff.num_steps, 'network_calls': 2 * diff.num_steps,
          'per_step_s': wall / diff.num_steps}


def main(argv):
  del argv
  result = {
      'benchmark': 'flowmdm', **report.machine(),
      'train_step': bench_train(_BATCH.value, _FRAMES.value, _STEPS.value),
      'composition_sampling': bench_sampling(_SEGMENTS.value, _SEG_FRAMES.value,
                                             _SAMPLE_STEPS.value),
  }
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
