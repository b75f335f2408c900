"""flowmdm.t2m: the T2M evaluator trains on the embedded data (spec, crops, learning)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxvision import train
from jaxvision.projects.flowmdm import t2m


def _config(tmp_path):
  c = ml_collections.ConfigDict({
      'project': 'flowmdm.t2m', 'total_steps': 2,
      'input': {'dataset': 'deepmimic', 'data_dir': str(tmp_path / 'cache'), 'batch_size': 8,
                'max_frames': 96, 'min_length': 10},
      'model': {'input_dim': 215, 'movement_hidden': 16, 'movement_latent': 16,
                'text_hidden': 16, 'motion_hidden': 16, 'coemb_size': 16},
  })
  return train.validate_config(c)


def test_batches_follow_the_spec_and_crop_whole_units(tmp_path):
  config = _config(tmp_path)
  batch = next(iter(t2m.make_dataset(config, 'train', seed=0, process_index=0, process_count=1)))
  spec = t2m.batch_spec(config, 'train')
  for k, s in spec.items():
    assert batch[k].shape == s.shape and batch[k].dtype == s.dtype, k
  assert np.all(batch['motion_lengths'] % 4 == 0)
  for b in range(8):
    assert np.all(batch['motion'][b, batch['motion_lengths'][b]:] == 0)
  assert np.all(batch['text_lengths'] >= 4)        # sos + >= 2 words + eos


def test_matching_loss_decreases(tmp_path):
  config = _config(tmp_path)
  model = t2m.make_model(config.model)
  batch = jax.tree.map(jnp.asarray, next(iter(t2m.make_dataset(
      config, 'train', seed=0, process_index=0, process_count=1))))
  params = jax.jit(lambda r: nn.meta.unbox(t2m.init_params(model, r, batch)))(jax.random.key(0))
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, rng):
    (loss, aux), g = jax.value_and_grad(t2m.loss_fn, has_aux=True)(
        params, batch, rng, model=model, config=config)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), opt, aux

  first = None
  for i in range(60):
    params, opt, aux = step(params, opt, jax.random.key(i))
    first = first or {k: float(v) for k, v in aux.items()}
  assert float(aux['loss_autoencoder']) < 0.7 * first['loss_autoencoder']
  assert float(aux['loss_pos']) < first['loss_pos']


def test_composition_metrics_of_real_motion_match_the_ground_truth(tmp_path):
  from jaxvision.projects.flowmdm import data as fm_data  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.flowmdm import evaluators_t2m  # pylint: disable=g-import-not-at-top
  config = _config(tmp_path)
  train.train(config, str(tmp_path / 'ev'))
  fm_input = ml_collections.ConfigDict(dict(config.input.to_dict(), window_frames=200,
                                            max_segments=1))
  records = fm_data.load_records(fm_input, 'test')
  mean, std = fm_data._stats(fm_data.data_root(fm_input))  # pylint: disable=protected-access
  gt = [r.motion * std + mean for r in records]
  scorer = evaluators_t2m.T2MScorer(workdir=str(tmp_path / 'ev'), data_stats=(mean, std),
                                    captions_tokens=t2m.caption_tokens(config.input, 'test'))
  # "Compositions" that are the real motions back to back, with their own captions.
  comps = [{'text': [records[i].texts[0], records[i + 1].texts[0]],
            'lengths': [len(gt[i]), len(gt[i + 1])]} for i in range(0, len(records), 2)]
  total = max(sum(c['lengths']) for c in comps)
  feats = np.zeros((len(comps), total, 215), np.float32)
  for k, i in enumerate(range(0, len(records), 2)):
    both = np.concatenate([gt[i], gt[i + 1]])
    feats[k, :len(both)] = both
  got = evaluators_t2m.composition_metrics(scorer, feats, comps, gt, transition_length=10)
  ref = evaluators_t2m.ground_truth_metrics(scorer, gt, [r.texts[0] for r in records])
  assert abs(got['motion_fid']) < 1e-3                     # the same motions as the GT set
  for k in (1, 2, 3):
    assert got[f'motion_r_precision_top{k}'] == ref[f'gt_r_precision_top{k}']
  assert got['motion_matching_score'] == ref['gt_matching_score']
  assert np.isfinite(got['transition_fid']) and got['transition_diversity'] > 0
