"""Tests of jaxvision.nn.convert_torch_state_dict (torch itself is optional)."""

import numpy as np
import pytest

from jaxvision.nn import convert_torch_state_dict as conv


def test_flatten_nested_checkpoint_like_finest_tar(tmp_path):
  ckpt = {'text_encoder': {'gru.weight_ih_l0': np.ones((6, 2)), 'hidden': np.zeros((2, 1, 2))},
          'motion_encoder': {'output_net.0.weight': np.ones((2, 4))},
          'epoch': 12, 'iter': 300}
  flat = conv.read_state_dict(ckpt)
  assert sorted(flat) == ['motion_encoder.output_net.0.weight', 'text_encoder.gru.weight_ih_l0',
                          'text_encoder.hidden']
  np.savez(tmp_path / 'ckpt.npz', **flat)
  back = conv.read_state_dict(tmp_path / 'ckpt.npz')
  assert sorted(back) == sorted(flat)
  np.testing.assert_array_equal(back['text_encoder.hidden'], flat['text_encoder.hidden'])
  with pytest.raises(FileNotFoundError, match='state dict file not found'):
    conv.read_state_dict(tmp_path / 'missing.npz')


def test_torch_conversion_roundtrip(tmp_path):
  torch = pytest.importorskip('torch')
  state = {'text_encoder': {'w': torch.arange(6, dtype=torch.float32).reshape(2, 3),
                            'b': torch.ones(2, dtype=torch.bfloat16)},
           'opt_text_encoder': {'state': {0: {'exp_avg': torch.zeros(2)}}}, 'epoch': 3}
  torch.save(state, tmp_path / 'finest.tar')
  assert conv.main([str(tmp_path / 'finest.tar'), str(tmp_path / 'out.npz')]) == 0
  out = conv.read_state_dict(tmp_path / 'out.npz')
  assert sorted(out) == ['text_encoder.b', 'text_encoder.w']
  assert out['text_encoder.b'].dtype == np.float32
  np.testing.assert_array_equal(out['text_encoder.w'], np.arange(6).reshape(2, 3))
