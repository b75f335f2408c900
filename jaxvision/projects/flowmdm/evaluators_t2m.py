"""Text-to-motion metrics for compositions in the T2M evaluator's space (FlowMDM Sec. 5).

As FlowMDM's `runners/eval.py` with the PriorMDM protocol:
- "motion" target: every segment of every composition, with its own text ->
  R-precision top-1/2/3 (batches of 32, duplicate captions dropped and the hits
  rescaled), matching score (mean text-motion distance), FID against the split's
  ground-truth motions, diversity;
- "transition" target: the windows of L_tr frames centred on each transition -> FID
  against random ground-truth crops of L_tr frames, diversity.
Diversity uses 300 random pairs, or N // 2 when fewer than 301 samples exist (the
embedded dataset is small).  Motions are re-normalised with the evaluator's own
statistics (`t2m_stats_dir`'s Mean.npy / Std.npy, HumanML3D's `t2m_mean/std`; default:
the dataset's), and cropped to whole units of 4 frames.

The evaluator comes from a `flowmdm.t2m` run (`t2m_workdir`) or from the released
HumanML3D weights (`t2m_checkpoint`: finest.tar as .npz, `jaxvision.nn.t2m_checkpoint`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data import humanml3d
from jaxvision.metrics import generation
from jaxvision.nn import t2m_evaluator as te
from jaxvision.projects.flowmdm import t2m as t2m_project


class T2MScorer:
  """Embeds motions and captions with a trained T2M evaluator."""

  def __init__(self, *, workdir: str = '', checkpoint: str = '', word_vectors: str = 'minilm',
               stats_dir: str = '', data_stats=None, captions_tokens=None,
               max_text_len: int = 20):
    if bool(workdir) == bool(checkpoint):
      raise ValueError('give exactly one of t2m_workdir and t2m_checkpoint')
    if workdir:
      from jaxvision import runs  # pylint: disable=g-import-not-at-top
      run = runs.load_run(workdir, projects_allowed=('flowmdm.t2m',))
      self.model = run.model.evaluator
      self.params = run.params['evaluator']
      word_vectors = run.config.input.word_vectors
    else:
      from jaxvision.nn import t2m_checkpoint  # pylint: disable=g-import-not-at-top
      self.model, self.params = t2m_checkpoint.load_t2m_evaluator(checkpoint)
    self.tokens = dict(captions_tokens or {})
    words = sorted({t.split('/')[0] for toks in self.tokens.values() for t in toks})
    self.vectors = t2m_project.word_vector_table(word_vectors, tuple(words))
    self.max_text_len = max_text_len
    self.stats = humanml3d.read_stats(stats_dir) if stats_dir else data_stats
    self._motion = jax.jit(lambda p, m, n: self.model.apply({'params': p}, m, n,
                                                            method=te.T2MEvaluator.encode_motion))
    self._text = jax.jit(lambda p, w, pos, n: self.model.apply(
        {'params': p}, w, pos, n, method=te.T2MEvaluator.encode_text))

  def embed_motions(self, features, lengths):
    """Denormalised features (N, T, F) with lengths -> (N, D) embeddings."""
    mean, std = self.stats
    unit = self.model.unit_length
    lengths = (np.asarray(lengths) // unit) * unit
    x = (np.asarray(features, np.float32) - mean) / std
    t = x.shape[1] // unit * unit
    x = x[:, :t] * (np.arange(t)[None, :, None] < lengths[:, None, None])
    return np.asarray(self._motion(self.params, jnp.asarray(x), jnp.asarray(lengths)))

  def embed_texts(self, captions):
    feats = [te.text_features(self.tokens[c], self.vectors, self.max_text_len) for c in captions]
    words = np.stack([f[0] for f in feats])
    pos = np.stack([f[1] for f in feats])
    lens = np.array([f[2] for f in feats], np.int32)
    return np.asarray(self._text(self.params, jnp.asarray(words), jnp.asarray(pos),
                                 jnp.asarray(lens)))


def _diversity(emb, seed):
  times = min(generation.DIVERSITY_TIMES, len(emb) // 2)
  return generation.diversity(emb, times=times, seed=seed) if times > 0 else float('nan')


def composition_metrics(scorer: T2MScorer, features, compositions, gt_motions,
                        transition_length: int, seed: int = 0) -> dict[str, float]:
  """Motion- and transition-target metrics of denormalised compositions (N, T, F)."""
  from jaxvision.metrics import jerk as jerk_lib  # pylint: disable=g-import-not-at-top
  seg_feats, seg_lens, captions, windows = [], [], [], []
  longest = max(max(c['lengths']) for c in compositions)
  for feats, comp in zip(features, compositions):
    start = 0
    for text, n in zip(comp['text'], comp['lengths']):
      pad = np.zeros((longest, feats.shape[-1]), np.float32)
      pad[:n] = feats[start:start + n]
      seg_feats.append(pad)
      seg_lens.append(n)
      captions.append(text)
      start += n
    windows.append(jerk_lib.transition_windows(feats[:start], comp['lengths'], transition_length))
  motion_emb = scorer.embed_motions(np.stack(seg_feats), seg_lens)
  text_emb = scorer.embed_texts(captions)
  rng = np.random.default_rng(seed)
  gt_len = np.array([len(m) for m in gt_motions])
  gt_pad = np.zeros((len(gt_motions), gt_len.max(), gt_motions[0].shape[-1]), np.float32)
  for i, m in enumerate(gt_motions):
    gt_pad[i, :len(m)] = m
  gt_emb = scorer.embed_motions(gt_pad, gt_len)
  out = {}
  batch = min(generation.R_PRECISION_BATCH, len(captions))
  match = generation.matching_metrics(text_emb, motion_emb, batch_size=batch, captions=captions)
  for k in range(3):
    out[f'motion_r_precision_top{k + 1}'] = float(match['r_precision'][k])
  out['motion_matching_score'] = float(match['matching_score'])
  out['motion_fid'] = generation.fid(motion_emb, gt_emb)
  out['motion_diversity'] = _diversity(motion_emb, seed)
  win = np.concatenate(windows)
  crops = []
  long_enough = [m for m in gt_motions if len(m) >= transition_length]
  for _ in range(max(len(win), 32)):
    m = long_enough[rng.integers(len(long_enough))]
    s = rng.integers(0, len(m) - transition_length + 1)
    crops.append(m[s:s + transition_length])
  tr_emb = scorer.embed_motions(win, [transition_length] * len(win))
  crop_emb = scorer.embed_motions(np.stack(crops), [transition_length] * len(crops))
  out['transition_fid'] = generation.fid(tr_emb, crop_emb)
  out['transition_diversity'] = _diversity(tr_emb, seed)
  return out


def ground_truth_metrics(scorer: T2MScorer, gt_motions, captions, seed: int = 0):
  """The reference values: the evaluator on the split's real motions and their captions."""
  lens = np.array([len(m) for m in gt_motions])
  pad = np.zeros((len(gt_motions), lens.max(), gt_motions[0].shape[-1]), np.float32)
  for i, m in enumerate(gt_motions):
    pad[i, :len(m)] = m
  motion_emb = scorer.embed_motions(pad, lens)
  text_emb = scorer.embed_texts(list(captions))
  batch = min(generation.R_PRECISION_BATCH, len(captions))
  match = generation.matching_metrics(text_emb, motion_emb, batch_size=batch, captions=captions)
  out = {f'gt_r_precision_top{k + 1}': float(match['r_precision'][k]) for k in range(3)}
  out['gt_matching_score'] = float(match['matching_score'])
  out['gt_diversity'] = _diversity(motion_emb, seed)
  return out
