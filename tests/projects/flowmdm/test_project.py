"""The FlowMDM project through the foundation's contract: data, overfitting, sharding."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import config as config_lib
from jaxvision import sharding as sharding_lib
from jaxvision import train
from jaxvision.projects import flowmdm


def small_config(tmp_path, **overrides):
  c = ml_collections.ConfigDict({
      'project': 'flowmdm', 'seed': 0, 'total_steps': 2, 'log_every': 1,
      'input': {'dataset': 'deepmimic', 'data_dir': str(tmp_path / 'cache'), 'batch_size': 8,
                'max_frames': 96, 'min_length': 10},
      'model': {'input_dim': 215, 'latent_dim': 32, 'num_layers': 2, 'num_heads': 2,
                'head_dim': 16, 'ff_size': 64, 'rpe_horizon': 20, 'rotary_dim': 8,
                'text_dim': 16, 'dropout': 0.0, 'layer_dropout': 0.0,
                'text_encoder': {'type': 'small', 'width': 16, 'depth': 1, 'max_tokens': 12,
                                 'vocab_size': 256}},
      'optimizer': {'name': 'adamw', 'weight_decay': 0.0},
      'schedule': {'type': 'constant', 'base_lr': 1e-3},
      'evals': {},
      'checkpoint': {'every': 100, 'asynchronous': False},
  })
  c = train.validate_config(c)
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def first_batch(config):
  ds = flowmdm.make_dataset(config, 'train', seed=0, process_index=0, process_count=1)
  return next(iter(ds))


def test_batches_follow_the_spec(tmp_path):
  config = small_config(tmp_path)
  batch = first_batch(config)
  spec = flowmdm.batch_spec(config, 'train')
  assert set(batch) == set(spec)
  for k, s in spec.items():
    assert batch[k].shape == s.shape and batch[k].dtype == s.dtype, k
  # Frames of a motion are contiguous, start at 0 and carry segment 0; padding -1.
  lengths = batch['mask'].sum(1)
  for b in range(8):
    assert np.all(batch['segment_ids'][b, :lengths[b]] == 0)
    assert np.all(batch['segment_ids'][b, lengths[b]:] == -1)
    assert np.all(batch['motion'][b, lengths[b]:] == 0)
  assert np.all(batch['text_tokens'][:, 0, 0] > 0)


def test_overfits_one_batch(tmp_path):
  config = small_config(tmp_path, **{'diffusion.cond_mask_prob': 0.0, 'input.batch_size': 4,
                                     'input.max_frames': 64, 'input.max_length': 65})
  model = flowmdm.make_model(config.model)
  batch = jax.tree.map(jnp.asarray, first_batch(config))
  params = jax.jit(lambda r: nn.meta.unbox(flowmdm.init_params(model, r, batch)))(
      jax.random.key(0))
  tx = optax.adam(1e-2)
  opt = tx.init(params)
  rng = jax.random.key(1)   # the same t, noise and BPE stage every step

  @jax.jit
  def step(params, opt):
    (loss, _), g = jax.value_and_grad(flowmdm.loss_fn, has_aux=True)(
        params, batch, rng, model=model, config=config)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), opt, loss

  losses = []
  for _ in range(400):
    params, opt, loss = step(params, opt)
    losses.append(float(loss))
  assert losses[-1] < 0.02 * losses[0], (losses[0], losses[-1])


def test_sharded_step_matches_one_device(tmp_path):
  results = []
  for mesh in ({'data': 1, 'fsdp': 1, 'model': 1}, {'data': 2, 'fsdp': 2, 'model': 2}):
    config = small_config(tmp_path, mesh=mesh, **{'model.num_layers': 1,
                                                  'input.max_frames': 64,
                                                  'input.max_length': 65})
    exp = train.build(config)
    state = exp.setup.init(jax.random.key(0))
    local = first_batch(exp.config)
    with jax.set_mesh(exp.mesh):
      batch = sharding_lib.host_batch_to_global(local, exp.mesh)
      state, metrics = exp.train_step(state, batch)
    results.append((jax.device_get(state['params']), float(metrics['loss'])))
  (p1, l1), (p8, l8) = results
  assert l1 == pytest.approx(l8, rel=1e-5)
  flat1 = dict(jax.tree_util.tree_leaves_with_path(p1))
  flat8 = dict(jax.tree_util.tree_leaves_with_path(p8))
  for k, v in flat1.items():
    np.testing.assert_allclose(v, flat8[k], rtol=1e-4, atol=2e-6, err_msg=jax.tree_util.keystr(k))


def test_config_errors_are_named(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='text_encoder.type'):
    flowmdm.make_model(small_config(tmp_path, **{'model.text_encoder.type': 'gpt'}).model)
  config = small_config(tmp_path, **{'input.dataset': 'humanml3d', 'input.data_dir': ''})
  with pytest.raises(config_lib.ConfigError, match='data_dir'):
    first_batch(config)
  config = small_config(tmp_path, **{'input.dataset': 'humanml3d',
                                     'input.data_dir': str(tmp_path / 'nope')})
  with pytest.raises(FileNotFoundError, match='nope'):
    first_batch(config)
  assert not os.path.exists(tmp_path / 'nope')


def test_babel_windows_become_multi_segment_batches(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from jaxvision.data import deepmimic, motion_representation as mr  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'babel'
  (root / 'motions').mkdir(parents=True)
  ann = {}
  for sid, clips in (('s0', ('walk', 'jump', 'kick')), ('s1', ('run', 'punch'))):
    feats = [mr.extract_features(deepmimic.clip_positions(c, 30.0), deepmimic.skeleton())[0]
             for c in clips]
    np.save(root / 'motions' / f'{sid}.npy', np.concatenate(feats).astype(np.float32))
    labels, t = [], 0.0
    for c, f in zip(clips, feats):
      labels.append({'proc_label': c, 'start_t': t, 'end_t': t + len(f) / 30.0})
      t += len(f) / 30.0
    ann[sid] = {'babel_sid': sid, 'frame_ann': {'labels': labels}}
  (root / 'train.json').write_text(json.dumps(ann))
  np.save(root / 'Mean.npy', np.zeros(215, np.float32))
  np.save(root / 'Std.npy', np.ones(215, np.float32))
  config = small_config(tmp_path, **{'input.dataset': 'babel', 'input.data_dir': str(root),
                                     'input.fps': 30.0, 'input.max_frames': 150,
                                     'input.max_segments': 4, 'input.min_length': 20,
                                     'input.max_length': 150, 'input.window_frames': 150,
                                     'input.batch_size': 2,
                                     'input.babel_features': 'sequence'})
  batch = first_batch(config)
  assert batch['text_tokens'].shape == (2, 4, 12)
  n_segments = [len(set(s[s >= 0])) for s in batch['segment_ids']]
  assert max(n_segments) >= 2
  for b in range(2):
    seg = batch['segment_ids'][b]
    valid = seg[seg >= 0]
    assert np.all(np.diff(valid) >= 0)                        # contiguous, in order
    assert np.all(batch['text_tokens'][b, :len(set(valid)), 0] > 0)
    assert np.all(batch['text_tokens'][b, len(set(valid)):] == 0)


def test_clip_text_encoder_path(tmp_path):
  from jaxvision.nn import clip_tokenizer  # pylint: disable=g-import-not-at-top
  try:
    clip_tokenizer.openai_bpe_path()
  except FileNotFoundError:
    pytest.skip('the CLIP BPE file ships in the open-clip-torch wheel (not installed)')
  config = small_config(tmp_path, **{'model.text_encoder.type': 'clip',
                                     'model.text_encoder.clip.truncate_tokens': 20,
                                     'model.text_dim': 512})
  batch = first_batch(config)
  assert batch['text_tokens'].shape == (8, 1, 77)
  tokens = batch['text_tokens'][:, 0]
  assert np.all(tokens[:, 22:] == 0) and np.all(tokens.max(-1) == 49407)   # [EOT], MDM's 22
  model = flowmdm.make_model(config.model)
  shapes = jax.eval_shape(lambda: flowmdm.init_params(model, jax.random.key(0), jax.tree.map(
      jnp.asarray, batch)))
  clip = nn.meta.unbox(shapes)['text_encoder']['clip']
  assert clip['token_embedding'].shape == (49408, 512)
  assert clip['text_projection'].shape == (512, 512)
