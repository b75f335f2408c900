r"""FlowMDM speed at paper size; prints one JSON object.

  python benchmarks/flowmdm.py [--batch=64] [--frames=200] [--steps=20] \
      [--lengths=600,1200,2400,4800] [--segment_frames=150] [--sample_steps=1000] \
      [--attention=banded,dense] [--out=result.json]

- train step: the sharded, jitted step of the one training binary (`train.build`) for
  the upstream HumanML3D model (d=512, 8 layers, 4x64 heads, 263 features, precomputed
  512-d text embeddings, horizon 150) on a batch of `batch` x `frames`; median step time
  and samples/s.  The batch is random numbers of the right shapes (speed does not depend
  on the values; the HumanML3D data is not shipped).
  Two AdamW updates per step from one gradient, as upstream's loop (and the configs).
- composition sampling, one row per total length T in `lengths` and attention kind
  (`model.banded_attention`): one sequence of T / `segment_frames` segments (upstream
  evaluates 32-segment compositions: T = 4,800), `sample_steps` denoising steps (1000
  upstream; fewer = respaced) with classifier-free guidance (both passes as one batched
  call per step) and the BPE schedule, T padded to its shape bucket; wall time after
  compilation, per step and per step and frame (flat in T = linear cost).
- every timed function also reports FLOPs (XLA cost analysis), achieved FLOP/s and the
  fraction of a matmul peak measured in the same run (`mfu.py`).
"""

from __future__ import annotations

import os
import statistics
import time

from absl import app
from absl import flags
import mfu  # benchmarks/mfu.py
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
_LENGTHS = flags.DEFINE_list('lengths', ['600', '1200', '2400', '4800'],
                             'total frames of the sampled compositions (one row each)')
_ATTENTION = flags.DEFINE_list('attention', ['banded', 'dense'], 'attention kinds to sample with')
_SKIP_TRAIN = flags.DEFINE_bool('skip_train', False, 'only the sampling rows')
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
      'optimizer': {'name': 'adamw', 'weight_decay': 0.0, 'wd_mask': None,
                    'updates_per_step': 2},
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
  import resource  # pylint: disable=g-import-not-at-top
  return {'compile_s': compile_s, 'step_s_median': step, 'samples_per_s': batch / step,
          'num_params': n_params, 'batch': batch, 'frames': frames,
          'host_max_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          **mfu.utilisation(mfu.compiled_flops(compiled), step)}


def bench_sampling(total: int, segment_frames: int, sample_steps: int, banded: bool) -> dict:
  cfg = paper_config(1, 8).model
  with cfg.unlocked():
    cfg.banded_attention = banded
  from jaxvision.projects import flowmdm  # pylint: disable=g-import-not-at-top
  model = flowmdm.make_model(cfg)
  segments = max(1, total // segment_frames)
  lengths = [segment_frames] * (segments - 1) + [total - segment_frames * (segments - 1)]
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
  tb = sampling.bucket_length(t)
  noise = jax.random.normal(jax.random.key(1), (1, t, 263))
  args = (jax.random.key(2), noise, text, jnp.asarray(seg), jnp.asarray(mask))
  t0 = time.perf_counter()
  jax.block_until_ready(sampling.sample_in_bucket(sample, *args))   # compiles the bucket
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  jax.block_until_ready(sampling.sample_in_bucket(sample, *args))
  wall = time.perf_counter() - t0
  # FLOPs of one guided step: the batched [cond; uncond] network call at the bucket length.
  one = jax.jit(denoise).lower(jnp.zeros((2, tb, 263)), jnp.zeros((2,), jnp.int32),
                               jnp.concatenate([text, 0 * text]), jnp.zeros((2, tb), jnp.int32),
                               jnp.ones((2, tb), bool), jnp.zeros(2)).compile()
  per_step = wall / diff.num_steps
  return {'attention': 'banded' if banded else 'dense', 'frames': t, 'bucket_frames': tb,
          'segments': segments, 'compile_and_first_call_s': compile_s, 'sample_s': wall,
          'denoising_steps': diff.num_steps, 'per_step_s': per_step,
          'per_step_per_1000_frames_s': per_step / t * 1000,
          'samples_per_s': 1 / wall, 'load_average_1min': round(os.getloadavg()[0], 2),
          **mfu.utilisation(mfu.compiled_flops(one), per_step)}


def main(argv):
  del argv
  result = {'benchmark': 'flowmdm', **report.machine()}
  if not _SKIP_TRAIN.value:
    result['train_step'] = bench_train(_BATCH.value, _FRAMES.value, _STEPS.value)
  result['composition_sampling'] = [
      bench_sampling(int(n), _SEG_FRAMES.value, _SAMPLE_STEPS.value, kind == 'banded')
      for kind in _ATTENTION.value for n in _LENGTHS.value]
  report.emit(result, _OUT.value)


if __name__ == '__main__':
  app.run(main)
