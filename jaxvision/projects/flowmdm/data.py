"""FlowMDM's training inputs: fixed-shape batches from HumanML3D or Babel-style data.

`input.dataset`:
  'deepmimic'  the embedded real mocap in the HumanML3D layout (`deepmimic_dataset`),
               written to `input.data_dir` (or the jaxvision cache) on first use;
  'humanml3d'  HumanML3D in its own layout under `input.data_dir`;
  'babel'      Babel-style multi-segment windows under `input.data_dir` (`data/babel.py`).

Every example becomes
  motion       (T, F) float32, z-normalised (`input.stats`: the data directory's
               Mean/Std, or 'upstream' = FlowMDM's shipped Babel statistics), zero-padded
  mask         (T,) bool, valid frames
  segment_ids  (T,) int32, the text segment of each frame (-1 = padding)
  text_tokens  (S, L) int32 (text encoders 'small' / 'clip'), or
  text_emb     (S, E) float32 (precomputed embeddings)
HumanML3D examples are single-text (S = 1, one of the motion's captions drawn at
random, motions longer than T cropped at a random offset, as `Text2MotionDatasetV2`);
Babel windows carry one text per segment (S = `max_segments`); with
`input.babel_features='window'` (default, upstream) each window's features are computed
from its own SMPL-H frames (`motions/<sid>.npz`), with 'sequence' sliced from
per-sequence features (`motions/<sid>.npy`).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from jaxvision import config as config_lib
from jaxvision.data import babel
from jaxvision.projects.flowmdm import deepmimic_dataset
from jaxvision.data import humanml3d
from jaxvision.data import pipeline
from jaxvision.nn import clip_text
from jaxvision.nn import clip_tokenizer
from jaxvision.projects.flowmdm import babel_stats
from jaxvision.projects.flowmdm import smpl_features
from jaxvision.projects.flowmdm import text as text_lib

DATASETS = ('deepmimic', 'humanml3d', 'babel')


@dataclasses.dataclass
class Record:
  motion: np.ndarray          # (T, F), normalised
  texts: tuple                # HumanML3D: alternative captions; Babel: one per segment
  lengths: tuple | None       # Babel: segment lengths; HumanML3D: None


class RecordSource:
  def __init__(self, records):
    if not records:
      raise ValueError('empty dataset')
    self.records = list(records)

  def __len__(self):
    return len(self.records)

  def __getitem__(self, i):
    return {'index': np.asarray(i, np.int64)}


def data_root(input_cfg) -> str:
  if input_cfg.dataset == 'deepmimic':
    return deepmimic_dataset.ensure_layout(input_cfg.data_dir or None)
  if not input_cfg.data_dir:
    raise config_lib.ConfigError(f'config.input.data_dir must point at the {input_cfg.dataset} '
                                 'dataset')
  if not os.path.isdir(input_cfg.data_dir):
    raise FileNotFoundError(f'{input_cfg.dataset} data_dir {input_cfg.data_dir!r} does not exist')
  return input_cfg.data_dir


STATS = ('data_dir', 'upstream')


@functools.lru_cache(maxsize=8)
def _stats(root: str):
  return humanml3d.read_stats(root)


def stats(input_cfg) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std) the motions are z-normalised with (`input.stats`).

  'data_dir': `Mean.npy` / `Std.npy` in the data directory (HumanML3D's own; any data);
  'upstream': upstream FlowMDM's Babel statistics (`babel_stats.py`, the 135-d features),
  what the released Babel model and evaluator expect.
  """
  choice = input_cfg.get('stats', 'data_dir')
  if choice not in STATS:
    raise config_lib.ConfigError(f'config.input.stats={choice!r}; known: {STATS}')
  if choice == 'upstream':
    if input_cfg.dataset != 'babel':
      raise config_lib.ConfigError("config.input.stats='upstream' holds Babel's statistics; "
                                   f'input.dataset is {input_cfg.dataset!r}')
    return babel_stats.babel_stats()
  return _stats(data_root(input_cfg))


def load_records(input_cfg, split: str) -> list[Record]:
  if input_cfg.dataset not in DATASETS:
    raise config_lib.ConfigError(f'config.input.dataset={input_cfg.dataset!r}; known: {DATASETS}')
  root = data_root(input_cfg)
  mean, std = stats(input_cfg)
  if input_cfg.dataset == 'babel':
    windows = babel.read_windows(root, split, fps=input_cfg.fps, min_frames=input_cfg.min_length,
                                 max_frames=input_cfg.max_length,
                                 window_frames=input_cfg.window_frames,
                                 max_segments=input_cfg.max_segments,
                                 features=input_cfg.get('babel_features', 'window'),
                                 featurize=smpl_features.window_features)
    return [Record((w.motion - mean) / std, w.texts, w.lengths) for w in windows]
  examples = humanml3d.read_examples(root, split, fps=input_cfg.fps,
                                     min_length=input_cfg.min_length,
                                     max_length=input_cfg.max_length)
  return [Record((e.motion - mean) / std, tuple(t.caption for t in e.texts), None)
          for e in examples]


class Featurizer:
  """Turns a record (+ rng) into one fixed-shape example."""

  def __init__(self, config, records):
    self.records = records
    self.input = config.input
    self.text = config.model.text_encoder
    self.table = None
    if self.text.type == 'precomputed':
      if not config.input.text_embeddings:
        raise config_lib.ConfigError('text_encoder.type=precomputed needs '
                                     'config.input.text_embeddings (an .npz)')
      self.table = clip_text.load_text_embeddings(config.input.text_embeddings)
    elif self.text.type == 'clip':
      self.clip_tok = clip_tokenizer.BPETokenizer.openai(self.text.clip.bpe_path or None)

  def encode_texts(self, texts, num_segments):
    if self.table is not None:
      missing = [t for t in texts if t not in self.table]
      if missing:
        raise KeyError(f'no precomputed embedding for text(s) {missing[:3]}')
      dim = len(next(iter(self.table.values())))
      out = np.zeros((num_segments, dim), np.float32)
      for i, t in enumerate(texts):
        out[i] = self.table[t]
      return {'text_emb': out}
    if self.text.type == 'clip':
      toks = np.zeros((num_segments, 77), np.int32)
      context = self.text.clip.truncate_tokens + 2 if self.text.clip.truncate_tokens else 77
      toks[:len(texts)] = self.clip_tok.tokenize(list(texts), context_length=context,
                                                 truncate=True, pad_to=77)
      return {'text_tokens': toks}
    toks = np.zeros((num_segments, self.text.max_tokens), np.int32)
    for i, t in enumerate(texts):
      toks[i] = text_lib.hash_tokenize(t, self.text.max_tokens, self.text.vocab_size)
    return {'text_tokens': toks}

  def __call__(self, example, rng):
    rec = self.records[int(example['index'])]
    t_max = self.input.max_frames
    motion = rec.motion
    if rec.lengths is None:
      texts = (rec.texts[int(rng.integers(len(rec.texts)))],)
      lengths = [min(len(motion), t_max)]
      start = int(rng.integers(0, len(motion) - lengths[0] + 1))
      motion = motion[start:start + lengths[0]]
    else:
      texts, lengths = rec.texts, list(rec.lengths)
      if sum(lengths) > t_max:
        raise ValueError(f'a Babel window of {sum(lengths)} frames exceeds max_frames={t_max}')
    n = sum(lengths)
    seg = np.full(t_max, -1, np.int32)
    seg[:n] = np.repeat(np.arange(len(lengths)), lengths)
    out = {'motion': np.zeros((t_max, motion.shape[1]), np.float32), 'mask': seg >= 0,
           'segment_ids': seg}
    out['motion'][:n] = motion[:n]
    out.update(self.encode_texts(texts, self.input.max_segments))
    return out


def make_dataset(config, split, *, seed, process_index, process_count):
  records = load_records(config.input, config.input.train_split if split == 'train' else split)
  if records[0].motion.shape[1] != config.model.input_dim:
    raise config_lib.ConfigError(
        f'{config.input.dataset} motions have {records[0].motion.shape[1]} features but '
        f'config.model.input_dim={config.model.input_dim}')
  featurize = Featurizer(config, records)
  return pipeline.train_dataset(
      RecordSource(records), global_batch_size=config.input.batch_size, seed=seed,
      preprocess=featurize, num_workers=config.input.num_workers,
      process_index=process_index, process_count=process_count)
