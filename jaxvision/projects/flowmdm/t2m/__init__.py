"""Training Guo et al.'s T2M evaluator on a HumanML3D-layout dataset (project 'flowmdm.t2m').

FlowMDM's R-precision, FID, diversity and matching score are computed in the embedding
space of the text/motion evaluator of Guo et al. 2022 (`jaxvision.nn.t2m_evaluator`).
Its released weights exist for HumanML3D (`finest.tar`, loaded by
`jaxvision.nn.t2m_checkpoint`); for another dataset, such as the embedded DeepMimic
mocap, it is trained here through the same binary.

Upstream trains in two stages: a movement autoencoder (DecompTrainerV3: L1
reconstruction + sparsity + smoothness), then, with the movement encoder frozen, the
text and motion encoders with a contrastive loss (margin 10) on true and shifted pairs.
Here both run in one loop: the movement encoder learns only from the autoencoder loss
(its output reaches the matching loss through a stop-gradient), the text and motion
encoders only from the matching loss.  Motion crops follow upstream's evaluator
dataset: the length is rounded down to whole units of 4 frames, one unit shorter with
probability 1/3, at a random offset.  Word vectors: HumanML3D's GloVe layout
(`input.word_vectors=<dir>`) or MiniLM's WordPiece embeddings ('minilm').
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import config as config_lib
from jaxvision.data import pipeline
from jaxvision.data.sources import ArraySource
from jaxvision.data import word_vectors as wv
from jaxvision.evaluators import inference
from jaxvision.nn import t2m_evaluator as te
from jaxvision.projects.flowmdm import data as fm_data
from jaxvision.projects.flowmdm.t2m.losses import loss_fn  # pylint: disable=unused-import

kind = 'trained'   # the contract of jaxvision/projects/__init__.py
__all__ = ['kind', 'default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'EVALUATORS']

POS_SIZE = len(te.POS_ENUMERATOR)


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {'input_dim': config_lib.REQUIRED, 'movement_hidden': 512,
                'movement_latent': 512, 'text_hidden': 512, 'motion_hidden': 1024,
                'coemb_size': 512, 'unit_length': 4, 'num_contacts': 4},
      'input': {'dataset': config_lib.REQUIRED, 'data_dir': '', 'train_split': 'train',
                'batch_size': 32, 'max_frames': 196, 'min_length': 40, 'max_length': 200,
                'fps': 20.0, 'max_text_len': 20, 'word_vectors': 'minilm', 'num_workers': 0},
      'loss': {'margin': 10.0, 'lambda_sparsity': 1e-3, 'lambda_smooth': 1e-3,
               'upstream_shift': True},
  })


class EvaluatorWithDecoder(nn.Module):
  """The evaluator plus the movement decoder its movement encoder is trained with."""
  evaluator: te.T2MEvaluator
  decoder: te.MovementConvDecoder

  def __call__(self, word_embs, pos_onehot, text_lengths, motion, motion_lengths, *,
               train: bool = False):
    ev = self.evaluator
    latents = ev.movement_encoder(motion[..., :motion.shape[-1] - ev.num_contacts], train=train)
    recon = self.decoder(latents)
    text_emb, motion_emb = ev(word_embs, pos_onehot, text_lengths, motion, motion_lengths,
                              train=train)
    return text_emb, motion_emb, latents, recon


def make_model(model_cfg):
  m = model_cfg
  evaluator = te.T2MEvaluator(
      movement_hidden=m.movement_hidden, movement_latent=m.movement_latent,
      text_hidden=m.text_hidden, motion_hidden=m.motion_hidden, coemb_size=m.coemb_size,
      unit_length=m.unit_length, num_contacts=m.num_contacts, train_movement=False)
  return EvaluatorWithDecoder(evaluator, te.MovementConvDecoder(m.movement_hidden, m.input_dim))


@functools.lru_cache(maxsize=4)
def word_vector_table(spec: str, words: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
  if spec == 'minilm':
    return wv.minilm_word_vectors(('unk', 'sos', 'eos') + words)
  return wv.read_glove_layout(spec)


def word_dim(input_cfg) -> int:
  return 384 if input_cfg.word_vectors == 'minilm' else len(
      next(iter(word_vector_table(input_cfg.word_vectors).values())))


def init_params(model, rng, batch):
  return model.init({'params': rng, 'dropout': rng}, batch['word_embs'], batch['pos_onehot'],
                    jnp.full(batch['text_lengths'].shape, 2), batch['motion'],
                    jnp.full(batch['motion_lengths'].shape, batch['motion'].shape[1]))['params']


def batch_spec(config, split):
  del split
  i = config.input
  b, t, l = i.batch_size, i.max_frames, i.max_text_len + 2
  return {'word_embs': jax.ShapeDtypeStruct((b, l, word_dim(i)), jnp.float32),
          'pos_onehot': jax.ShapeDtypeStruct((b, l, POS_SIZE), jnp.float32),
          'text_lengths': jax.ShapeDtypeStruct((b,), jnp.int32),
          'motion': jax.ShapeDtypeStruct((b, t, config.model.input_dim), jnp.float32),
          'motion_lengths': jax.ShapeDtypeStruct((b,), jnp.int32)}


class Featurizer:
  """A record + rng -> evaluator inputs (upstream's evaluator dataset crops)."""

  def __init__(self, config, records, tokens_of):
    self.records, self.tokens_of, self.cfg = records, tokens_of, config
    words = sorted({t.split('/')[0] for toks in tokens_of.values() for t in toks})
    self.vectors = word_vector_table(config.input.word_vectors, tuple(words))

  def __call__(self, example, rng):
    i, m = self.cfg.input, self.cfg.model
    rec = self.records[int(example['index'])]
    caption = rec.texts[int(rng.integers(len(rec.texts)))]
    word_embs, pos, sent_len = te.text_features(self.tokens_of[caption], self.vectors,
                                                i.max_text_len)
    n = min(len(rec.motion), i.max_frames)
    units = n // m.unit_length - (1 if rng.random() < 1 / 3 and n // m.unit_length > 1 else 0)
    n = units * m.unit_length
    start = int(rng.integers(0, len(rec.motion) - n + 1))
    motion = np.zeros((i.max_frames, rec.motion.shape[1]), np.float32)
    motion[:n] = rec.motion[start:start + n]
    return {'word_embs': word_embs, 'pos_onehot': pos, 'text_lengths': np.int32(sent_len),
            'motion': motion, 'motion_lengths': np.int32(n)}


def caption_tokens(input_cfg, split) -> dict[str, tuple[str, ...]]:
  """{caption: 'word/POS' tokens} from the dataset's text files."""
  from jaxvision.data import humanml3d  # pylint: disable=g-import-not-at-top
  root = fm_data.data_root(input_cfg)
  out = {}
  for name in humanml3d.read_split(root, split):
    for line in humanml3d.read_texts(root, name):
      out[line.caption] = line.tokens
  return out


def make_dataset(config, split, *, seed, process_index, process_count):
  split = config.input.train_split if split == 'train' else split
  fm_input = ml_collections.ConfigDict(dict(config.input.to_dict(), window_frames=200,
                                            max_segments=1))
  records = fm_data.load_records(fm_input, split)
  feat = Featurizer(config, records, caption_tokens(config.input, split))
  return pipeline.train_dataset(fm_data.RecordSource(records),
                                global_batch_size=config.input.batch_size, seed=seed,
                                preprocess=feat, num_workers=config.input.num_workers,
                                process_index=process_index, process_count=process_count)


class MatchingEvaluator:
  """R-precision and matching score of the evaluator itself on ground-truth pairs.

  Every (motion, caption) pair of the split is embedded through the shared sharded
  inference (`jaxvision.evaluators.inference`), then scored in upstream's groups of
  `batch_size` (`jaxvision.metrics.generation.matching_metrics`).
  """

  DEFAULTS = {'type': 'matching', 'split': 'test', 'every': 0, 'batch_size': 32}

  def __init__(self, name, cfg, ctx, predict_fns=None):
    del predict_fns
    self.name, self.every, self.ctx, self.cfg = name, int(cfg.every), ctx, cfg
    run = ctx.config
    fm_input = ml_collections.ConfigDict(dict(run.input.to_dict(), window_frames=200,
                                              max_segments=1))
    records = fm_data.load_records(fm_input, cfg.split)
    tokens = caption_tokens(run.input, cfg.split)
    words = sorted({t.split('/')[0] for toks in tokens.values() for t in toks})
    vectors = word_vector_table(run.input.word_vectors, tuple(words))
    unit, t_max = run.model.unit_length, run.input.max_frames
    fields = {k: [] for k in ('words', 'pos', 'tlen', 'motion', 'mlen')}
    self.captions = []
    for rec in records:
      for caption in rec.texts:
        w, p, n = te.text_features(tokens[caption], vectors, run.input.max_text_len)
        m = np.zeros((t_max, rec.motion.shape[1]), np.float32)
        length = min(len(rec.motion), t_max) // unit * unit
        m[:length] = rec.motion[:length]
        for k, v in zip(fields, (w, p, n, m, length)):
          fields[k].append(v)
        self.captions.append(caption)
    self.source = ArraySource({k: np.stack(v) for k, v in fields.items()})
    ev = ctx.model.evaluator

    def embed(params, batch):
      text_emb, motion_emb = ev.apply({'params': params['evaluator']}, batch['words'],
                                      batch['pos'], batch['tlen'], batch['motion'], batch['mlen'])
      return {'text': text_emb, 'motion': motion_emb}

    self._batches = lambda: inference.dataset_batches(ctx, self.source,
                                                      batch_size=int(cfg.batch_size))
    self.infer = inference.Inference(ctx, embed)

  def run(self, params):
    from jaxvision.metrics import generation  # pylint: disable=g-import-not-at-top
    emb = self.infer.predict(params, self._batches())
    batch = min(self.cfg.batch_size, len(self.captions))
    out = generation.matching_metrics(emb['text'], emb['motion'], batch_size=batch,
                                      captions=self.captions)
    return {'r_precision_top1': out['r_precision'][0], 'r_precision_top2': out['r_precision'][1],
            'r_precision_top3': out['r_precision'][2], 'matching_score': out['matching_score']}


# The project's own `config.evals` type (jaxvision.evaluators builds it).
EVALUATORS = {'matching': MatchingEvaluator}
