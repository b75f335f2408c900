"""FlowMDM: seamless human motion composition with Blended Positional Encodings.

Barquero, Escalera, Palmero, CVPR 2024.  A diffusion model over HumanML3D-style motion
features whose denoiser (`model.py`) switches per sample between absolute positional
encodings (global coherence) and relative ones (smooth transitions), and conditions
queries only on the text (PCCAT).  Trained on single-text motions (HumanML3D) or
multi-segment windows (Babel); samples long compositions of many texts in one pass
(`sampling.py`); scored with Peak Jerk / Area Under the Jerk at transitions
(`jaxvision.metrics.jerk`).  See README.md for results, commands and decisions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import config as config_lib
from jaxvision.projects.flowmdm import data
from jaxvision.projects.flowmdm import losses
from jaxvision.projects.flowmdm import model as model_lib
from jaxvision.projects.flowmdm import text as text_lib
from jaxvision.projects.flowmdm.losses import loss_fn  # pylint: disable=unused-import
from jaxvision.projects.flowmdm.losses import make_diffusion  # pylint: disable=unused-import
from jaxvision.projects.flowmdm.evaluators import EVALUATORS  # pylint: disable=unused-import

kind = 'trained'   # the contract of jaxvision/projects/__init__.py
__all__ = ['kind', 'default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'EVALUATORS', 'load_pretrained']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {
          'input_dim': config_lib.REQUIRED,   # 263 HumanML3D, 135 Babel, 215 embedded
          'latent_dim': 512, 'num_layers': 8, 'num_heads': 4, 'head_dim': 64,
          'ff_size': 1024, 'dropout': 0.1, 'layer_dropout': 0.1,
          'layer_dropout_per_sample': False,
          'rpe_horizon': 200, 'band_in_absolute_stage': True, 'segment_bias': True,
          'rotary_dim': 0, 'text_dim': 512,
          'banded_attention': False,   # True: the band block-wise, linear in T (equal results)
          'text_encoder': {
              'type': 'precomputed',        # precomputed | small | clip
              'vocab_size': 1024, 'max_tokens': 16, 'width': 128, 'depth': 2,
              'num_heads': 4,
              'clip': {'variant': 'ViT-B/32', 'bpe_path': '', 'checkpoint': '',
                       'truncate_tokens': 0},   # 20: MDM's HumanML3D hack
          },
      },
      'input': {
          'dataset': config_lib.REQUIRED,     # deepmimic | humanml3d | babel
          'data_dir': '',
          'train_split': 'train',
          'batch_size': 64,
          'max_frames': 196,                 # T of every batch (HumanML3D 196, Babel 250)
          'max_segments': 1,                 # S (Babel 10)
          'min_length': 40, 'max_length': 200,   # HumanML3D filter; Babel: 45, 250
          'window_frames': 200,              # Babel window limit
          'fps': 20.0,
          'text_embeddings': '',             # .npz for text_encoder.type='precomputed'
          'stats': 'data_dir',               # data_dir (Mean/Std.npy) | upstream (Babel's)
          'babel_features': 'window',        # window (upstream, .npz SMPL) | sequence (.npy)
          'num_workers': 0,
      },
      'diffusion': {'steps': 1000, 'schedule': 'cosine', 'variance': 'fixed_small',
                    'cond_mask_prob': 0.1, 'bpe_training_ratio': 0.5},
      'sampling': {'bpe_switch_step': 60, 'guidance_scale': 2.5, 'respacing': '',
                   'method': 'ddpm', 'eta': 0.0},
      # Initialise from released PyTorch weights (convert.py) or a jaxvision workdir.
      'init': {'torch_state_dict': '', 'workdir': ''},
  })


def make_text_encoder(model_cfg):
  enc = model_cfg.text_encoder
  if enc.type == 'precomputed':
    return None
  if enc.type == 'small':
    return text_lib.SmallTextEncoder(vocab_size=enc.vocab_size, max_tokens=enc.max_tokens,
                                     width=enc.width, depth=enc.depth, num_heads=enc.num_heads,
                                     out_dim=model_cfg.text_dim)
  if enc.type == 'clip':
    return text_lib.ClipTextCondition(enc.clip.variant)
  raise config_lib.ConfigError(f"config.model.text_encoder.type={enc.type!r}; use "
                               "'precomputed', 'small' or 'clip'")


def make_model(model_cfg) -> model_lib.FlowMDM:
  m = model_cfg
  denoiser = model_lib.FlowMDMDenoiser(
      input_dim=m.input_dim, latent_dim=m.latent_dim, num_layers=m.num_layers,
      num_heads=m.num_heads, head_dim=m.head_dim, ff_size=m.ff_size, dropout=m.dropout,
      layer_dropout=m.layer_dropout, layer_dropout_per_sample=m.layer_dropout_per_sample,
      rpe_horizon=m.rpe_horizon, band_in_absolute_stage=m.band_in_absolute_stage,
      segment_bias=m.segment_bias, rotary_dim=m.rotary_dim, text_dim=m.text_dim,
      banded_attention=m.banded_attention)
  return model_lib.FlowMDM(denoiser=denoiser, text_encoder=make_text_encoder(m))


def init_params(model, rng, batch):
  b = batch['motion'].shape[0]
  return model.init({'params': rng, 'dropout': rng}, batch['motion'],
                    jnp.zeros((b,), jnp.int32), text=losses.text_input(batch),
                    segment_ids=batch['segment_ids'], mask=batch['mask'],
                    bpe_w=jnp.zeros((b,)), train=False)['params']


def batch_spec(config, split: str):
  del split
  i, m = config.input, config.model
  b, t, s = i.batch_size, i.max_frames, i.max_segments
  spec = {'motion': jax.ShapeDtypeStruct((b, t, m.input_dim), jnp.float32),
          'mask': jax.ShapeDtypeStruct((b, t), jnp.bool_),
          'segment_ids': jax.ShapeDtypeStruct((b, t), jnp.int32)}
  enc = m.text_encoder
  if enc.type == 'precomputed':
    spec['text_emb'] = jax.ShapeDtypeStruct((b, s, m.text_dim), jnp.float32)
  else:
    length = 77 if enc.type == 'clip' else enc.max_tokens
    spec['text_tokens'] = jax.ShapeDtypeStruct((b, s, length), jnp.int32)
  return spec


def make_dataset(config, split, *, seed, process_index, process_count):
  return data.make_dataset(config, split, seed=seed, process_index=process_index,
                           process_count=process_count)


def load_pretrained(params, config):
  """Released upstream weights (`init.torch_state_dict`) or a jaxvision run's params.

  `params` is the run's fresh, sharded params; the result has the same shardings.
  Converted host weights are placed leaf by leaf (`param_tree.place_like`); a
  jaxvision run's checkpoint is read by orbax shard by shard straight into place
  (`stages.restore_subtrees`): the params are never gathered on one host.
  """
  from jaxvision.nn import param_tree  # pylint: disable=g-import-not-at-top
  init = config.init
  if init.torch_state_dict and init.workdir:
    raise config_lib.ConfigError('set only one of config.init.torch_state_dict and init.workdir')
  if init.workdir:
    from jaxvision import stages  # pylint: disable=g-import-not-at-top
    state, _, _ = stages.restore_subtrees({'params': params}, init.workdir, ['params/.*'])
    return state['params']
  loaded = params
  clip_ckpt = config.model.text_encoder.clip.checkpoint
  if config.model.text_encoder.type == 'clip' and clip_ckpt:
    from jaxvision.nn import clip_checkpoint  # pylint: disable=g-import-not-at-top
    _, clip_params = clip_checkpoint.load_clip_text(clip_ckpt)
    loaded = dict(loaded, text_encoder={'clip': clip_params})
  if init.torch_state_dict:
    from jaxvision.projects.flowmdm import convert  # pylint: disable=g-import-not-at-top
    loaded = convert.load_into(loaded, convert.read_state_dict(init.torch_state_dict),
                               config.model, rows_used=config.diffusion.steps)
  return param_tree.place_like(loaded, params)
