"""Tests of jaxvision.nn.clip_tokenizer on merges files the tests write.

Expected ids are worked out by hand from CLIP's vocabulary layout: the 256 byte
characters in `bytes_to_unicode` order (printable '!'..'~' first, so 'a' is 97 - 33 =
64), the same with '</w>' (+256), one id per merge (512 + rank), then SOT and EOT.
"""

import gzip
import json
import re

import numpy as np
import pytest

from jaxvision.data import packaged
from jaxvision.nn import clip_tokenizer as ct

MERGES = ['t h', 'th e</w>', 'w a', 'l k', 'wa lk', 'b c</w>', 'a b', 'a a']


def _byte_id(ch, end=False):
  return ch_index(ch) + (256 if end else 0)


def ch_index(ch):
  return ord(ch) - ord('!')  # Printable ASCII comes first, from '!'.


@pytest.fixture(name='merges_path', params=['plain', 'gz'])
def _merges_path(tmp_path, request):
  text = '#version: 0.2\n' + '\n'.join(MERGES) + '\n'  # Hugging Face's header.
  if request.param == 'gz':  # OpenAI's header line (skipped, not a merge).
    text = '"bpe_simple_vocab_16e6.txt#version: 0.2\n' + '\n'.join(MERGES) + '\n'
    path = tmp_path / 'merges.txt.gz'
    with gzip.open(path, 'wb') as f:
      f.write(text.encode('utf-8'))
  else:
    path = tmp_path / 'merges.txt'
    path.write_text(text, encoding='utf-8')
  return path


def test_bytes_to_unicode_is_a_bijection_onto_printables():
  table = ct.bytes_to_unicode()
  assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
  assert all(not c.isspace() and c.isprintable() for c in table.values())
  assert table[ord('a')] == 'a' and list(table)[0] == ord('!')


def test_encode_by_hand(merges_path):
  tok = ct.BPETokenizer(merges_path)
  assert tok.vocab_size == 512 + len(MERGES) + 2
  assert (tok.sot_token, tok.eot_token) == (512 + len(MERGES), 513 + len(MERGES))
  # 'the' -> t h e</w> -> th e</w> (rank 0) -> the</w> (rank 1).
  assert tok.bpe('the') == ['the</w>']
  # 'walks' -> wa (2), lk (3), walk (4); 's</w>' stays a byte symbol.
  assert tok.bpe('walks') == ['walk', 's</w>']
  # The lowest rank wins: 'b c</w>' (5) before 'a b' (6) leaves a | bc</w>.
  assert tok.bpe('abc') == ['a', 'bc</w>']
  # Left to right, non-overlapping: a a a a</w> -> aa a a</w>.
  assert tok.bpe('aaaa') == ['aa', 'a', 'a</w>']
  assert tok.encode('The walks') == [513, 516, _byte_id('s', end=True)]
  assert tok.encode('a') == [_byte_id('a', end=True)]
  # A non-ASCII byte: 'é' is UTF-8 c3 a9, both printable latin-1 (bytes_to_unicode keeps
  # them) and without merges: two symbols, the last one marked as a word end.
  table = ct.bytes_to_unicode()
  order = list(table)
  assert tok.encode('é') == [order.index(0xC3), 256 + order.index(0xA9)]


def test_decode_inverts_encode(merges_path):
  tok = ct.BPETokenizer(merges_path)
  assert tok.decode(tok.encode('The walks, café!')) == 'the walks , café ! '


def test_split_pieces_matches_python_re_on_ascii():
  # OpenAI's regex with \p{L} -> [a-z] and \p{N} -> [0-9], valid for lower-case ASCII.
  pattern = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                       r"[a-z]+|[0-9]|[^\sa-z0-9]+")
  rng = np.random.default_rng(0)
  alphabet = list("abcdefghijklmnop0123456789 '!.,-?:;sdtmlrve") + ['<|endoftext|>']
  for _ in range(300):
    text = ''.join(rng.choice(alphabet, size=rng.integers(0, 30)))
    assert ct.split_pieces(text) == pattern.findall(text), text
  assert ct.split_pieces("it's 42 cats!!") == ['it', "'s", '4', '2', 'cats', '!!']
  # Unicode classes: letters run together; '½' is a number (category No); '—' a symbol.
  assert ct.split_pieces('café½—x') == ['café', '½', '—', 'x']


def test_clean_text():
  assert ct.clean_text('  A &amp;amp; B\n\t c ') == 'a & b c'


def test_tokenize_pads_truncates_and_rejects(merges_path):
  tok = ct.BPETokenizer(merges_path)
  out = tok.tokenize(['the', 'the walks'], context_length=6)
  sot, eot = tok.sot_token, tok.eot_token
  np.testing.assert_array_equal(out, [[sot, 513, eot, 0, 0, 0],
                                      [sot, 513, 516, _byte_id('s', True), eot, 0]])
  assert out.dtype == np.int32
  with pytest.raises(ValueError, match='more than the context length 4'):
    tok.tokenize('the walks', context_length=4)
  np.testing.assert_array_equal(tok.tokenize('the walks', context_length=3, truncate=True),
                                [[sot, 513, eot]])
  # MDM's HumanML3D variant: cut to a short context, then zero-pad to CLIP's.
  np.testing.assert_array_equal(
      tok.tokenize('the walks', context_length=3, truncate=True, pad_to=5),
      [[sot, 513, eot, 0, 0]])
  with pytest.raises(ValueError, match='pad_to 2 is shorter'):
    tok.tokenize('the', context_length=3, pad_to=2)


def test_vocab_json_and_max_merges(tmp_path, merges_path):
  tok = ct.BPETokenizer(merges_path, max_merges=2)
  assert tok.vocab_size == 512 + 2 + 2 and tok.bpe('walks') == list('walk') + ['s</w>']
  vocab = {'t': 0, 'h': 1, 'e</w>': 2, 'th': 3, 'the</w>': 4,
           '<|startoftext|>': 5, '<|endoftext|>': 6}
  (tmp_path / 'vocab.json').write_text(json.dumps(vocab))
  tok = ct.BPETokenizer(merges_path, vocab_path=tmp_path / 'vocab.json')
  assert tok.encode('the') == [4] and tok.tokenize('the', 4).tolist() == [[5, 4, 6, 0]]
  with pytest.raises(KeyError, match="'wa' of 'walk'"):
    tok.encode('walk')


def test_bad_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='merges file not found'):
    ct.BPETokenizer(tmp_path / 'nope.txt')
  (tmp_path / 'bad.txt').write_text('#version: 0.2\na b c\n')
  with pytest.raises(ValueError, match='bad.txt:2'):
    ct.BPETokenizer(tmp_path / 'bad.txt')


def test_openai_vocabulary_from_the_open_clip_wheel():
  # The real merges file (a registry package ships it); ids as OpenAI's clip.tokenize.
  try:
    path = ct.openai_bpe_path()
  except FileNotFoundError:
    pytest.skip('pip install --no-deps open-clip-torch provides the OpenAI BPE file')
  tok = ct.BPETokenizer.openai()
  assert tok.vocab_size == 49408 and (tok.sot_token, tok.eot_token) == (49406, 49407)
  np.testing.assert_array_equal(tok.tokenize('a photo of a cat', 10),
                                [[49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0]])
  assert tok.encode('a diagram') == [320, 22697] and tok.encode('a dog') == [320, 1929]
  text = 'A person walks forward, then turns LEFT!'
  assert tok.decode(tok.encode(text)) == 'a person walks forward , then turns left ! '
  # The header line of OpenAI's file is not a merge (it is '"bpe_simple...#version: 0.2').
  assert ct.read_merges(path, 1) == [('i', 'n')]


def test_openai_bpe_path_names_the_fix(monkeypatch):
  monkeypatch.setattr(packaged.importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(FileNotFoundError, match='pip install --no-deps open-clip-torch'):
    ct.openai_bpe_path()
