"""Checkpoint readers (big_vision ViT, CLIP, T2M evaluator) refuse bad files by name.

Issue 10 items 10-11: NaN/Inf weights and complex dtypes used to be loaded (complex ones
silently cast to real), truncated or empty `.npz` files failed without the file's name.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxvision.nn import clip_checkpoint as cc
from jaxvision.nn import t2m_checkpoint as tc
from jaxvision.nn import vit_checkpoint as vc
from tests.data.refusals import refused
from tests.nn.test_clip_text import HEADS
from tests.nn.test_clip_text import make_state_dict as clip_state_dict
from tests.nn.test_t2m_evaluator import make_state_dict as t2m_state_dict

INIT = {'embedding': {'kernel': np.zeros((2, 2, 3, 4), np.float32),
                      'bias': np.zeros(4, np.float32)},
        'head': {'kernel': np.zeros((4, 5), np.float32), 'bias': np.zeros(5, np.float32)}}


def _bv_flat(seed=0):
  rng = np.random.default_rng(seed)
  return {k: rng.normal(size=v.shape).astype(np.float32) for k, v in vc.flatten(INIT).items()}


def _save(path, flat):
  with open(path, 'wb') as f:
    np.savez(f, **flat)
  return path


def test_good_big_vision_npz_still_loads(tmp_path):
  flat = _bv_flat()
  params = vc.load_big_vision_npz(_save(tmp_path / 'ok.npz', flat), INIT)
  np.testing.assert_array_equal(params['head']['kernel'], flat['head/kernel'])


@pytest.mark.parametrize('bad, words', [
    (lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a), ('non-finite',)),
    (lambda a: np.full_like(a, np.inf), ('non-finite',)),
    (lambda a: a.astype(np.complex64) + 1j, ('complex64',)),
    (lambda a: a.astype(str), ('dtype',)),
], ids=['nan', 'inf', 'complex', 'string'])
def test_big_vision_npz_with_bad_weights_is_refused(tmp_path, bad, words):
  flat = _bv_flat()
  flat['head/kernel'] = bad(flat['head/kernel'])
  path = _save(tmp_path / 'bad.npz', flat)
  with refused(path, 'head/kernel', *words):
    vc.load_big_vision_npz(path, INIT)


@pytest.mark.parametrize('cut', [0, 40, 300, -30],
                         ids=['empty', 'header', 'member', 'directory'])
def test_truncated_big_vision_npz_is_refused(tmp_path, cut):
  path = _save(tmp_path / 'cut.npz', _bv_flat())
  path.write_bytes(path.read_bytes()[:cut])
  with refused(path, 'npz'):
    vc.load_big_vision_npz(path, INIT)


def test_in_memory_params_with_nan_are_refused():
  flat = _bv_flat()
  flat['embedding/bias'][1] = np.nan
  with refused('jaxvision run', 'embedding/bias', 'non-finite'):
    vc.merge_params(flat, INIT, source='jaxvision run')


def _poison(sd, key, value):
  sd = dict(sd)
  arr = np.array(sd[key], dtype=np.result_type(sd[key], value))
  arr.flat[0] = value
  sd[key] = arr
  return sd


@pytest.mark.parametrize('value, words', [(np.nan, ('non-finite',)), (np.inf, ('non-finite',)),
                                          (1j, ('complex',))], ids=['nan', 'inf', 'complex'])
def test_clip_npz_with_bad_weights_is_refused(tmp_path, value, words):
  key = 'transformer.resblocks.0.attn.in_proj_weight'
  path = _save(tmp_path / 'clip.npz', _poison(clip_state_dict(), key, value))
  with refused(path, key, *words):
    cc.load_clip_text(path, num_heads=HEADS)
  with refused('state_dict', key, *words):     # the same weights passed in memory
    cc.load_clip_text(_poison(clip_state_dict(), key, value), num_heads=HEADS)


@pytest.mark.parametrize('value, words', [(np.nan, ('non-finite',)), (1j, ('complex',))],
                         ids=['nan', 'complex'])
def test_t2m_npz_with_bad_weights_is_refused(tmp_path, value, words):
  key = 'text_encoder.gru.weight_hh_l0'
  path = _save(tmp_path / 't2m.npz', _poison(t2m_state_dict(), key, value))
  with refused(path, key, *words):
    tc.load_t2m_evaluator(path)


@pytest.mark.parametrize('loader', [lambda p: cc.load_clip_text(p, num_heads=HEADS),
                                    tc.load_t2m_evaluator], ids=['clip', 't2m'])
def test_truncated_state_dict_npz_is_refused(tmp_path, loader):
  path = _save(tmp_path / 'sd.npz', t2m_state_dict())
  path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  with refused(path, 'npz'):
    loader(path)
