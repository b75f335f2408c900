"""Load Guo et al.'s released evaluator weights into `t2m_evaluator.T2MEvaluator`.

`checkpoints/t2m/text_mot_match/model/finest.tar` (and `kit/...`) holds one PyTorch
state_dict per encoder under 'movement_encoder', 'text_encoder', 'motion_encoder'
(`TextMotionMatchTrainer.save`); `python -m jaxvision.nn.convert_torch_state_dict
finest.tar t2m.npz` flattens it to these names (EricGuo5513/text-to-motion
networks/modules.py):

    movement_encoder.main.{0,3}.{weight (out, in, 4), bias}   Conv1d layers
    movement_encoder.out_net.{weight, bias}                   Linear
    {text,motion}_encoder.input_emb.{weight, bias}            Linear
    text_encoder.pos_emb.{weight (word, pos), bias}           Linear
    {text,motion}_encoder.gru.{weight_ih_l0 (3H, in), weight_hh_l0 (3H, H),
        bias_ih_l0, bias_hh_l0} and the same with suffix _reverse      nn.GRU (r, z, n)
    {text,motion}_encoder.hidden (2, 1, H)                    learned initial states
    {text,motion}_encoder.output_net.{0,3}.{weight, bias}     Linear layers
    {text,motion}_encoder.output_net.1.{weight, bias}         LayerNorm

The movement autoencoder of the Decomp stage (`latest.tar`, keys 'movement_enc',
'movement_dec'; the decoder's ConvTranspose1d layers are `main.{0,2}`, weight
(in, out, 4)) loads with `load_movement_autoencoder`. Linear weights are transposed
(x W^T + b); sizes are read from the shapes.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Union

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import param_tree
from jaxvision.nn import t2m_evaluator as te
from jaxvision.nn.convert_torch_state_dict import read_state_dict

Source = Union[str, os.PathLike, Mapping[str, Any]]


class _StateDict:
  """Prefixed access to a flat state_dict with errors that name the missing key."""

  def __init__(self, sd: Mapping[str, Any], prefix: str):
    self.sd, self.prefix = sd, prefix

  def __call__(self, key: str, ndim: int) -> np.ndarray:
    full = self.prefix + key
    if full not in self.sd:
      raise KeyError(f'evaluator state_dict has no {full!r}')
    value = np.asarray(self.sd[full], np.float32)
    if value.ndim != ndim:
      raise ValueError(f'{full!r} should have {ndim} dims, got shape {value.shape}')
    return value

  def linear(self, key: str) -> dict[str, np.ndarray]:
    return {'kernel': self(f'{key}.weight', 2).T, 'bias': self(f'{key}.bias', 1)}


def _gru(get: _StateDict) -> dict[str, np.ndarray]:
  out = {'hidden': get('hidden', 3)}
  for name, suffix in (('forward', ''), ('backward', '_reverse')):
    out[f'{name}_input_kernel'] = get(f'gru.weight_ih_l0{suffix}', 2).T
    out[f'{name}_hidden_kernel'] = get(f'gru.weight_hh_l0{suffix}', 2).T
    out[f'{name}_input_bias'] = get(f'gru.bias_ih_l0{suffix}', 1)
    out[f'{name}_hidden_bias'] = get(f'gru.bias_hh_l0{suffix}', 1)
  return out


def _output_net(get: _StateDict) -> dict[str, Any]:
  return {'dense_0': get.linear('output_net.0'), 'dense_1': get.linear('output_net.3'),
          'layer_norm': {'scale': get('output_net.1.weight', 1),
                         'bias': get('output_net.1.bias', 1)}}


def movement_encoder_params(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
  get = _StateDict(sd, prefix)
  conv = lambda i: {'kernel': get(f'main.{i}.weight', 3).transpose(2, 1, 0),  # pylint: disable=unnecessary-lambda-assignment
                    'bias': get(f'main.{i}.bias', 1)}
  return {'conv_0': conv(0), 'conv_1': conv(3), 'out_net': get.linear('out_net')}


def movement_decoder_params(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
  get = _StateDict(sd, prefix)
  deconv = lambda i: {'kernel': get(f'main.{i}.weight', 3).transpose(2, 0, 1),  # pylint: disable=unnecessary-lambda-assignment
                      'bias': get(f'main.{i}.bias', 1)}
  return {'deconv_0': deconv(0), 'deconv_1': deconv(2), 'out_net': get.linear('out_net')}


def evaluator_params(sd: Mapping[str, Any]) -> dict[str, Any]:
  """The T2MEvaluator parameter tree from a flat finest.tar state_dict."""
  text, motion = _StateDict(sd, 'text_encoder.'), _StateDict(sd, 'motion_encoder.')
  return {
      'movement_encoder': movement_encoder_params(sd, 'movement_encoder.'),
      'motion_encoder': {'input_emb': motion.linear('input_emb'), 'gru': _gru(motion),
                         'output_net': _output_net(motion)},
      'text_encoder': {'pos_emb': text.linear('pos_emb'), 'input_emb': text.linear('input_emb'),
                       'gru': _gru(text), 'output_net': _output_net(text)},
  }


def check_params(abstract: Mapping[str, Any], params: Mapping[str, Any], what: str) -> None:
  """Raises ValueError naming every key/shape where params differ from the model's."""
  param_tree.check_shapes(abstract, params, what)


def load_t2m_evaluator(source: Source, *, unit_length: int = 4, num_contacts: int = 4,
                       ) -> tuple[te.T2MEvaluator, dict[str, Any]]:
  """(model, params) from finest.tar's flat state_dict (dict of arrays or its .npz)."""
  sd = read_state_dict(source)
  params = evaluator_params(sd)
  mov, txt = params['movement_encoder'], params['text_encoder']
  model = te.T2MEvaluator(
      movement_hidden=mov['conv_0']['kernel'].shape[2],
      movement_latent=mov['conv_1']['kernel'].shape[2],
      text_hidden=txt['input_emb']['kernel'].shape[1],
      motion_hidden=params['motion_encoder']['input_emb']['kernel'].shape[1],
      coemb_size=txt['output_net']['dense_1']['kernel'].shape[1],
      unit_length=unit_length, num_contacts=num_contacts)
  features = mov['conv_0']['kernel'].shape[1] + num_contacts
  word, pos = txt['pos_emb']['kernel'].shape[1], txt['pos_emb']['kernel'].shape[0]
  frames = 4 * unit_length
  abstract = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 3, word)), jnp.zeros((1, 3, pos)), np.array([3]),
      jnp.zeros((1, frames, features)), np.array([frames])))['params']
  check_params(abstract, params, 'T2M evaluator')
  return model, params


def load_movement_autoencoder(source: Source, *, encoder_prefix: str = 'movement_enc.',
                              decoder_prefix: str = 'movement_dec.'):
  """(encoder, decoder, encoder_params, decoder_params) from a Decomp checkpoint."""
  sd = read_state_dict(source)
  enc_params = movement_encoder_params(sd, encoder_prefix)
  dec_params = movement_decoder_params(sd, decoder_prefix)
  in_features = enc_params['conv_0']['kernel'].shape[1]
  encoder = te.MovementConvEncoder(enc_params['conv_0']['kernel'].shape[2],
                                   enc_params['conv_1']['kernel'].shape[2])
  decoder = te.MovementConvDecoder(dec_params['deconv_0']['kernel'].shape[2],
                                   dec_params['deconv_1']['kernel'].shape[2])
  check_params(jax.eval_shape(lambda: encoder.init(
      jax.random.key(0), jnp.zeros((1, 8, in_features))))['params'], enc_params,
               'movement encoder')
  check_params(jax.eval_shape(lambda: decoder.init(
      jax.random.key(0), jnp.zeros((1, 2, encoder.output_size))))['params'], dec_params,
               'movement decoder')
  return encoder, decoder, enc_params, dec_params
