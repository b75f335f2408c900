"""FocusMAE (Basu et al., CVPR 2024): region-focused masked video autoencoder pre-training.

The project contract of jaxvision/projects/__init__.py, kind 'trained': MAE
pre-training (Sec. 3) of `model.VideoMAE` on ultrasound clips with random, tube, frame
or FocusMAE (region-biased) masking (`masking.py`) and the normalised-pixel loss
(`losses.py`). See README.md in this folder for what exists and what does not yet
(fine-tuning classifier, AdaMAE token-probability network, evaluation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import config as config_lib
from jaxvision.data import dicom_video
from jaxvision.data import pipeline
from jaxvision.projects.focusmae import data
from jaxvision.projects.focusmae.evaluators import EVALUATORS  # pylint: disable=unused-import
from jaxvision.projects.focusmae.evaluators import predict_fns  # pylint: disable=unused-import
from jaxvision.projects.focusmae import losses
from jaxvision.projects.focusmae import masking
from jaxvision.projects.focusmae import model as model_lib

kind = 'trained'
__all__ = ['kind', 'default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'predict_fns', 'eval_data', 'EVALUATORS']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {
          'frames': 16, 'image_size': (224, 224), 'tubelet': 2, 'patch': 16,
          'mask_ratio': 0.8, 'mask_type': 'focus',      # random | tube | frame | focus
          'encoder_width': 384, 'encoder_depth': 12, 'encoder_heads': 12,
          'decoder_width': 384, 'decoder_depth': 10, 'decoder_heads': 6,
          'mlp_ratio': 4.0, 'dtype_mm': 'float32',
          'adaptive': True,         # AdaMAE token-probability network gives the logits
          'sampler_heads': 8,
      },
      'input': {
          'dicom': 'echo_cine',     # an EMBEDDED name of jaxvision.data.dicom_video or a path
          'batch_size': config_lib.REQUIRED,
          'sampling_rate': 3,
          'clip_stride': 4,
          'max_frames': 0,          # 0: every frame of the cine
          'num_clips': 0,           # 0: every window
          'max_boxes': 1,
          'box_json': '',           # upstream detector JSON ('' = central-box prior)
          'min_score': 0.25,
          'num_workers': 0,
      },
      'masking': {
          'delta': 2.0,             # upstream --delta: logit bonus of ROI tokens
          'inflate': 1.2,           # upstream --inflateroi (pretrain.sh)
          'direction': 'mask',      # 'mask' (paper: ROI masked more) | 'visible' (code)
          'reference': 'center',    # 'center' | 'upstream' (corner minus half a patch)
      },
      'loss': {'normalize_target': True,
               'sampling_weight': 1e-4},   # AdaMAE's REINFORCE term (adaptive only)
  })


def make_model(model_cfg) -> model_lib.VideoMAE:
  return model_lib.VideoMAE(
      frames=model_cfg.frames, image_size=tuple(model_cfg.image_size),
      tubelet=model_cfg.tubelet, patch=model_cfg.patch, mask_ratio=model_cfg.mask_ratio,
      mask_type=model_cfg.mask_type, encoder_width=model_cfg.encoder_width,
      encoder_depth=model_cfg.encoder_depth, encoder_heads=model_cfg.encoder_heads,
      decoder_width=model_cfg.decoder_width, decoder_depth=model_cfg.decoder_depth,
      decoder_heads=model_cfg.decoder_heads, mlp_ratio=model_cfg.mlp_ratio,
      adaptive=model_cfg.adaptive, sampler_heads=model_cfg.sampler_heads,
      dtype_mm=model_cfg.dtype_mm)


def sample_masks(rng, batch, model: model_lib.VideoMAE, mask_cfg, logits=None,
                 delta=None) -> jax.Array:
  """(B, N) bool masks (True = masked) of `model.mask_type` for the batch's clips.

  logits (B, N): AdaMAE's token logits; with them 'random' masking is AdaMAE's sampler
  (no ROI bonus) and 'focus' adds delta on ROI tokens (FocusMAE). delta: overrides
  mask_cfg.delta (0 when the logits already hold the bonus).
  """
  grid = model.grid
  n = model.num_tokens
  num_masked = n - model.num_visible
  keys = jax.random.split(rng, batch['video'].shape[0])
  kind_ = model.mask_type
  if kind_ == 'random' and logits is None:
    return jax.vmap(lambda k: masking.random_mask(k, n, num_masked))(keys)
  if kind_ == 'tube':
    return jax.vmap(lambda k: masking.tube_mask(k, grid, model.mask_ratio))(keys)
  if kind_ == 'frame':
    return jax.vmap(lambda k: masking.frame_mask(k, grid, model.mask_ratio))(keys)

  delta = (mask_cfg.delta if delta is None else delta) if kind_ == 'focus' else 0.0
  if logits is None:
    logits = jnp.zeros((len(keys), n), jnp.float32)

  def one(k, boxes, valid, z):
    prior = masking.region_prior(boxes, valid, grid[1:], model.patch,
                                 inflate=mask_cfg.inflate, reference=mask_cfg.reference)
    return masking.focus_mask(k, masking.tile_prior(prior, grid[0]), num_masked, delta=delta,
                              logits=z, direction=mask_cfg.direction)
  return jax.vmap(one)(keys, batch['boxes'], batch['box_valid'], logits)


def priors(batch, model: model_lib.VideoMAE, mask_cfg) -> jax.Array:
  """(B, N) bool ROI priors of the batch's boxes, tiled over time."""
  grid = model.grid
  one = lambda b, v: masking.tile_prior(masking.region_prior(  # pylint: disable=g-long-lambda
      b, v, grid[1:], model.patch, inflate=mask_cfg.inflate, reference=mask_cfg.reference),
      grid[0])
  return jax.vmap(one)(batch['boxes'], batch['box_valid'])


def init_params(model, rng, batch):
  mask = sample_masks(jax.random.key(0), batch, model, default_config().masking)
  return model.init({'params': rng}, batch['video'], mask)['params']


def batch_spec(config, split: str):
  del split
  m, b = config.model, config.input.batch_size
  k = config.input.max_boxes
  return {'video': jax.ShapeDtypeStruct((b, m.frames, *m.image_size, 3), jnp.float32),
          'boxes': jax.ShapeDtypeStruct((b, k, 4), jnp.float32),
          'box_valid': jax.ShapeDtypeStruct((b, k), jnp.bool_)}


def loss_fn(params, batch, rng, *, model, config):
  """l_r (+ sampling_weight * l_s with the AdaMAE sampler), Sec. 3 / upstream engine."""
  mask_rng, drop_rng = jax.random.split(rng)
  video = model_lib.normalize_video(batch['video'])
  logits = None
  if model.adaptive:
    logits = model.apply({'params': params}, video, train=True, rngs={'dropout': drop_rng},
                         method=model_lib.VideoMAE.token_logits)
    if model.mask_type == 'focus':
      logits = masking.focus_logits(priors(batch, model, config.masking),
                                    config.masking.delta, logits)
  if model.adaptive and model.mask_type in ('random', 'focus'):
    # The bonus is already in the logits: sample with delta 0 on top of them.
    mask = sample_masks(mask_rng, batch, model, config.masking,
                        logits=jax.lax.stop_gradient(logits), delta=0.0)
  else:
    mask = sample_masks(mask_rng, batch, model, config.masking)
  pred = model.apply({'params': params}, video, mask, train=True, rngs={'dropout': drop_rng})
  masked = model_lib.masked_index(mask, model.num_visible)
  loss, per_token = losses.reconstruction_loss(
      pred, batch['video'], masked, tubelet=model.tubelet, patch=model.patch,
      normalize=config.loss.normalize_target)
  metrics = {'reconstruction': loss}
  if logits is not None and model.mask_type in ('random', 'focus'):
    l_s = losses.sampling_loss(logits, masked, per_token)
    metrics['sampling'] = l_s
    loss = loss + config.loss.sampling_weight * l_s
  return loss, metrics


def _dicom_path(name: str) -> str:
  return dicom_video.embedded_path(name) if name in dicom_video.EMBEDDED else name


def make_source(config) -> data.CineClips:
  i, m = config.input, config.model
  return data.CineClips(_dicom_path(i.dicom), frames=m.frames, sampling_rate=i.sampling_rate,
                        image_size=m.image_size, clip_stride=i.clip_stride,
                        max_frames=i.max_frames, max_boxes=i.max_boxes, num_clips=i.num_clips,
                        box_json=i.box_json, min_score=i.min_score)


def make_dataset(config, split, *, seed, process_index, process_count):
  del split
  return pipeline.train_dataset(
      make_source(config), global_batch_size=config.input.batch_size, seed=seed,
      num_workers=config.input.num_workers, process_index=process_index,
      process_count=process_count)


def eval_data(config, split: str):
  """The clips of the cine (one real cine: 'train' and 'val' are the same clips)."""
  del split
  return make_source(config), None
