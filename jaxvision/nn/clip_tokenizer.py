"""CLIP's byte-level BPE tokenizer (Radford et al. 2021, Sec. 2.4; Sennrich et al. 2016).

The algorithm of OpenAI's `clip/simple_tokenizer.py`, reading the merges from a path:
any merges file in that format, gzipped or not (e.g. Hugging Face's `merges.txt` for
openai/clip-*). OpenAI's own `bpe_simple_vocab_16e6.txt.gz` ships inside the
`open-clip-torch` wheel; `pip install --no-deps open-clip-torch` installs it without
torch (the package is never imported) and `BPETokenizer.openai()` finds it there
(`openai_bpe_path`). On that file the ids equal OpenAI's (e.g. 'a photo of a cat' ->
49406 320 1125 539 320 2368 49407).

1. clean: `html.unescape` twice (and `ftfy.fix_text` when ftfy is installed), collapse
   whitespace, strip, lower-case;
2. split into pieces like OpenAI's regex
   `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`
   (written out with `unicodedata` categories, so the `regex` package is not needed;
   ftfy, when missing, only matters for mojibake and curly quotes);
3. map each piece's UTF-8 bytes to printable characters (`bytes_to_unicode`), mark the
   last character with '</w>', and merge adjacent pairs, always the lowest-ranked pair
   in the merges list first, until none is in the list;
4. ids: the vocabulary is the 256 byte characters, the same with '</w>', one entry per
   merge (in order), then '<|startoftext|>' and '<|endoftext|>' (49408 entries for
   OpenAI's file with its 48894 merges), or a given `vocab.json`.

`tokenize` makes CLIP's model input: [SOT] + ids + [EOT], zero-padded to the context
length (an error if too long, or cut with [EOT] last if `truncate`), as `clip.tokenize`.
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import os
import re
import unicodedata
from typing import Optional, Sequence, Union

from jaxvision.data.packaged import packaged_file
import numpy as np

SOT, EOT = '<|startoftext|>', '<|endoftext|>'
# OpenAI reads lines [1, 49152 - 256 - 2 + 1) of its merges file.
OPENAI_NUM_MERGES = 49152 - 256 - 2
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


@functools.lru_cache()
def bytes_to_unicode() -> dict[int, str]:
  """Byte -> printable unicode character; printable latin-1 bytes map to themselves."""
  bs = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
        + list(range(ord('®'), ord('ÿ') + 1)))
  cs = bs[:]
  n = 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return dict(zip(bs, map(chr, cs)))


def clean_text(text: str) -> str:
  try:
    import ftfy  # pylint: disable=g-import-not-at-top
    text = ftfy.fix_text(text)
  except ImportError:
    pass
  text = html.unescape(html.unescape(text)).strip()
  return re.sub(r'\s+', ' ', text).strip().lower()


def _is_letter(c: str) -> bool:
  return unicodedata.category(c).startswith('L')


def _is_number(c: str) -> bool:
  return unicodedata.category(c).startswith('N')


def split_pieces(text: str) -> list[str]:
  """The pieces OpenAI's regex finds in (cleaned, lower-case) text."""
  pieces, i, n = [], 0, len(text)
  while i < n:
    c = text[i]
    special = next((s for s in (SOT, EOT) if text.startswith(s, i)), None)
    contraction = next((s for s in _CONTRACTIONS if text[i:i + len(s)].lower() == s), None)
    if special or contraction:
      piece = special or text[i:i + len(contraction)]
    elif _is_letter(c):
      j = i + 1
      while j < n and _is_letter(text[j]):
        j += 1
      piece = text[i:j]
    elif _is_number(c):
      piece = c
    elif not c.isspace():
      j = i + 1
      while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
        j += 1
      piece = text[i:j]
    else:
      i += 1
      continue
    pieces.append(piece)
    i += len(piece)
  return pieces


def openai_bpe_path() -> str:
  """OpenAI's `bpe_simple_vocab_16e6.txt.gz` from the installed open-clip-torch wheel.

  The wheel is data only here (`pip install --no-deps open-clip-torch`; torch is not needed).
  """
  return packaged_file('open_clip', 'bpe_simple_vocab_16e6.txt.gz', pip_name='open-clip-torch')


def read_merges(path: Union[str, os.PathLike], max_merges: Optional[int] = None) -> list[tuple[str, str]]:
  """Merge pairs from a merges file (a first line with '#version' is a header)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'BPE merges file not found: {path}')
  opener = gzip.open if str(path).endswith('.gz') else open
  with opener(path, 'rb') as f:
    lines = f.read().decode('utf-8').split('\n')
  # OpenAI's first line is '"bpe_simple_vocab_16e6.txt#version: 0.2', Hugging Face's
  # '#version: 0.2'; OpenAI skips line 0 whatever it holds.
  if lines and '#version' in lines[0]:
    lines = lines[1:]
  merges = []
  for num, line in enumerate(lines, start=2):
    if not line.strip():
      continue
    pair = tuple(line.split())
    if len(pair) != 2:
      raise ValueError(f'{path}:{num}: a merge is two symbols, got {line!r}')
    merges.append(pair)
  return merges[:max_merges] if max_merges is not None else merges


class BPETokenizer:
  """Byte-level BPE as CLIP's SimpleTokenizer; `encode`, `decode`, `tokenize`."""

  def __init__(self, merges_path: Union[str, os.PathLike], *,
               vocab_path: Union[str, os.PathLike, None] = None,
               max_merges: Optional[int] = None):
    self.byte_encoder = bytes_to_unicode()
    self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
    merges = read_merges(merges_path, max_merges)
    if vocab_path is not None:
      with open(vocab_path, encoding='utf-8') as f:
        self.encoder = {str(k): int(v) for k, v in json.load(f).items()}
    else:
      vocab = list(self.byte_encoder.values())
      vocab += [v + '</w>' for v in vocab]
      vocab += [''.join(m) for m in merges] + [SOT, EOT]
      self.encoder = {tok: i for i, tok in enumerate(vocab)}
    for tok in (SOT, EOT):
      if tok not in self.encoder:
        raise ValueError(f'vocabulary has no {tok} token')
    self.decoder = {v: k for k, v in self.encoder.items()}
    self.bpe_ranks = {m: i for i, m in enumerate(merges)}
    self.cache = {SOT: SOT, EOT: EOT}
    self.sot_token, self.eot_token = self.encoder[SOT], self.encoder[EOT]

  @classmethod
  def openai(cls, merges_path: Union[str, os.PathLike, None] = None) -> 'BPETokenizer':
    """OpenAI's tokenizer: its `bpe_simple_vocab_16e6.txt.gz` (default: `openai_bpe_path()`),
    first 48894 merges."""
    return cls(merges_path or openai_bpe_path(), max_merges=OPENAI_NUM_MERGES)

  @property
  def vocab_size(self) -> int:
    return len(self.encoder)

  def bpe(self, piece: str) -> list[str]:
    """The BPE symbols of one byte-encoded piece."""
    if piece in self.cache:
      return self.cache[piece].split(' ')
    word = list(piece[:-1]) + [piece[-1] + '</w>']
    while len(word) > 1:
      pairs = set(zip(word[:-1], word[1:]))
      best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float('inf')))
      if best not in self.bpe_ranks:
        break
      merged, i = [], 0
      while i < len(word):
        if i < len(word) - 1 and (word[i], word[i + 1]) == best:
          merged.append(word[i] + word[i + 1])
          i += 2
        else:
          merged.append(word[i])
          i += 1
      word = merged
    self.cache[piece] = ' '.join(word)
    return word

  def encode(self, text: str) -> list[int]:
    ids = []
    for piece in split_pieces(clean_text(text)):
      encoded = ''.join(self.byte_encoder[b] for b in piece.encode('utf-8'))
      for symbol in self.bpe(encoded):
        if symbol not in self.encoder:
          raise KeyError(f'BPE symbol {symbol!r} of {text!r} is not in the vocabulary')
        ids.append(self.encoder[symbol])
    return ids

  def decode(self, ids: Sequence[int]) -> str:
    """Text of token ids; word ends ('</w>') become spaces, as OpenAI's decode."""
    text = ''.join(self.decoder[int(i)] for i in ids)
    data = bytearray(self.byte_decoder[c] for c in text)
    return data.decode('utf-8', errors='replace').replace('</w>', ' ')

  def tokenize(self, texts: Union[str, Sequence[str]], context_length: int = 77,
               truncate: bool = False, pad_to: Optional[int] = None) -> np.ndarray:
    """(N, pad_to or context_length) int32: [SOT] ids [EOT] then zeros, as `clip.tokenize`.

    `pad_to` zero-pads past `context_length`: MDM's HumanML3D encoding is
    `tokenize(texts, context_length=22, truncate=True, pad_to=77)` (20 words + SOT/EOT).
    """
    if isinstance(texts, str):
      texts = [texts]
    width = context_length if pad_to is None else pad_to
    if width < context_length:
      raise ValueError(f'pad_to {pad_to} is shorter than the context length {context_length}')
    out = np.zeros((len(texts), width), dtype=np.int32)
    for row, text in enumerate(texts):
      ids = [self.sot_token] + self.encode(text) + [self.eot_token]
      if len(ids) > context_length:
        if not truncate:
          raise ValueError(f'text {text!r} is {len(ids)} tokens, more than the context '
                           f'length {context_length} (pass truncate=True to cut it)')
        ids = ids[:context_length]
        ids[-1] = self.eot_token
      out[row, :len(ids)] = ids
    return out
