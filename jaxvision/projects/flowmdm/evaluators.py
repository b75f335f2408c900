"""FlowMDM evaluators: compose long motions and score their transitions (Sec. 5).

`type='composition'` samples compositions of several texts (from a JSON in upstream's
formats -- `runners/jsons/{composition,extrapolation}_*.json`, one {"text": [...],
"lengths": [...]}, or its evaluation sets, a list of such objects with "id" and an
optional "scenario" that `scenario` selects -- or drawn from the split: random records'
captions with their own lengths), one sequence each, with the
configured BPE schedule and guidance, and reports Peak Jerk and Area Under the Jerk
over windows of `transition_length` frames centred on every transition.  Extra BPE
switch steps (e.g. -1 = absolute only, 0 = relative only) are sampled from the same
noise and reported as `pj_s<step>` / `auj_s<step>`.  The GT jerk constant AUJ is
measured against is `gt_jerk` (upstream: 0.033031363 HumanML3D, 0.016383045 Babel),
or, when 0, the mean jerk of random ground-truth crops of the split.

With `t2m_workdir` or `t2m_checkpoint` set, the same compositions are also scored in
the T2M evaluator's space (evaluators_t2m.py): R-precision, matching score, FID and
diversity for the segments ("motion") and FID and diversity for the transitions;
`extrapolation=True` drops R-precision and matching score, as upstream's extrapolation
evaluation (one repeated text).

`mode` is upstream's evaluation mode: 'debug' 1, 'fast' 3 and 'final' 10 replications,
each sampled with its own seed (seed + replication); every metric is then reported as
the mean over replications with `<name>_ci` = 1.96 std / sqrt(replications)
(`metrics.generation.confidence_interval`, upstream's `get_metric_statistics`).  The
default 'single' runs once and reports no interval.
"""

from __future__ import annotations

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import config as config_lib
from jaxvision.data import motion_representation as mr
from jaxvision.data.errors import DataFileError
from jaxvision.metrics import generation
from jaxvision.projects.flowmdm import smpl_features
from jaxvision.metrics import jerk as jerk_lib
from jaxvision.projects.flowmdm import data as data_lib
from jaxvision.diffusion import gaussian as diffusion_lib
from jaxvision.projects.flowmdm import model as model_lib
from jaxvision.projects.flowmdm import sampling

DEFAULTS = {
    'type': 'composition',
    'every': 0,
    'split': 'test',
    'compositions': '',          # JSON in upstream's format; '' = drawn from the split
    'num_compositions': 8,
    'segments': 3,
    'batch_size': 8,
    'transition_length': 60,     # HumanML3D 60, Babel 30 (frames)
    'bpe_switch_steps': (),      # extra schedules to compare
    'gt_jerk': 0.0,              # 0 = measured on ground-truth crops of the split
    'seed': 0,
    'scenario': '',              # upstream eval-set subset ('' = all)
    'extrapolation': False,      # no R-precision / matching score (one repeated text)
    'mode': 'single',            # single | debug (1) | fast (3) | final (10 replications)
    'save': True,                # <name>_compositions.npz in the workdir
    'smpl_rest_joints': '',      # Babel: (22, 3) .npy of the SMPL-H body's rest joints
    # T2M metrics (evaluators_t2m.py): a flowmdm.t2m run or released finest.tar weights.
    't2m_workdir': '',
    't2m_checkpoint': '',
    't2m_word_vectors': 'minilm',   # or HumanML3D's GloVe folder (our_vab_*)
    't2m_stats_dir': '',            # evaluator's Mean/Std; '' = the dataset's
}


def denormalize(input_cfg, features):
  mean, std = data_lib.stats(input_cfg)
  return features * std + mean


def make_decoder(input_dim: int, smpl_rest_joints: str = ''):
  """Denormalised features (..., T, F) -> joint positions (..., T, J, 3).

  HumanML3D-style features decode with `recover_from_ric`; Babel's 135-d SMPL-H features
  need the body's 22 rest joints (`smpl_rest_joints`, an .npy of shape (22, 3)).
  """
  if input_dim == smpl_features.FEATURE_DIM:
    if not smpl_rest_joints:
      raise config_lib.ConfigError(
          'Babel features (135-d) decode to joints through SMPL-H forward kinematics: set '
          "the composition evaluator's smpl_rest_joints to an .npy of the body's 22 rest joints")
    rest = np.load(smpl_rest_joints)
    return lambda f: smpl_features.recover_joints(np.asarray(f, np.float64), rest)
  num_joints = mr.num_joints_from_dim(input_dim)
  return lambda f: mr.recover_from_ric(np.asarray(f, np.float64), num_joints)


def transition_jerk(features, lengths_list, transition_length, decode):
  """Jerk curve over all transition windows of denormalised compositions."""
  windows = []
  for feats, lengths in zip(features, lengths_list):
    windows.append(jerk_lib.transition_windows(feats[:sum(lengths)], lengths, transition_length))
  windows = np.concatenate(windows)
  positions = decode(windows)
  return jerk_lib.jerk_curve(positions, [transition_length] * len(windows))


def ground_truth_jerk(records, input_cfg, transition_length, decode, seed):
  """Mean jerk of random GT crops of `transition_length` frames (the AUJ reference)."""
  rng = np.random.default_rng(seed)
  long_enough = [r for r in records if len(r.motion) >= transition_length]
  if not long_enough:
    raise ValueError(f'no ground-truth motion has {transition_length} frames for the GT jerk')
  crops = []
  for _ in range(max(64, len(long_enough))):
    rec = long_enough[rng.integers(len(long_enough))]
    start = rng.integers(0, len(rec.motion) - transition_length + 1)
    crops.append(rec.motion[start:start + transition_length])
  feats = denormalize(input_cfg, np.stack(crops))
  positions = decode(feats)
  return float(np.mean(jerk_lib.jerk_curve(positions, [transition_length] * len(crops))))


def draw_compositions(records, num, segments, seed):
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(num):
    picks = [records[i] for i in rng.integers(len(records), size=segments)]
    out.append({'text': [r.texts[rng.integers(len(r.texts))] for r in picks],
                'lengths': [len(r.motion) for r in picks]})
  return out


REPLICATIONS = {'single': 1, 'debug': 1, 'fast': 3, 'final': 10}


def _count(value) -> int | None:
  """A frame count (upstream casts with int(); strings of digits included), else None."""
  if isinstance(value, bool):
    return None
  if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
    return int(value)
  if isinstance(value, str) and value.strip().isdigit():
    return int(value)
  return None


def read_compositions(path, scenario: str = ''):
  """Compositions [{'text': [...], 'lengths': [...]}] of an upstream JSON (module doc).

  A list entry whose "scenario" differs from a non-empty `scenario` is skipped, as
  upstream's `load_model_kwargs_dataset`.  Bad files raise DataFileError naming them.
  """
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DataFileError(path, f'not valid JSON ({e})') from None
  comps = [data] if isinstance(data, dict) else data
  if not isinstance(comps, list):
    raise DataFileError(path, 'expected an object {"text", "lengths"} or a list of them')
  out = []
  for i, c in enumerate(comps):
    if not isinstance(c, dict):
      raise DataFileError(path, f'composition {i}: expected an object, got {type(c).__name__}')
    if scenario and 'scenario' in c and c['scenario'] != scenario:
      continue
    text, lengths = c.get('text'), c.get('lengths')
    if (not isinstance(text, list) or not isinstance(lengths, list) or not text
        or len(text) != len(lengths)):
      raise DataFileError(path, f'composition {i} needs equally long non-empty "text" and '
                          '"lengths" lists')
    if not all(isinstance(t, str) for t in text):
      raise DataFileError(path, f'composition {i}: every text must be a string')
    counts = [_count(n) for n in lengths]
    if any(n is None or n < 1 for n in counts):
      raise DataFileError(path, f'composition {i}: lengths must be positive frame counts, '
                          f'got {lengths}')
    out.append({'text': list(text), 'lengths': counts})
  if not out:
    raise DataFileError(path, 'no compositions' + (f' of scenario {scenario!r}' if scenario
                                                   else ''))
  return out


def aggregate_replications(per_replication: list[dict]) -> dict[str, float]:
  """Mean of every metric over replications and `<name>_ci` = 1.96 std / sqrt(n)."""
  if len(per_replication) == 1:
    return dict(per_replication[0])
  out = {}
  for name in per_replication[0]:
    mean, ci = generation.confidence_interval(np.array([r[name] for r in per_replication]))
    out[name], out[f'{name}_ci'] = float(mean), float(ci)
  return out


class CompositionEvaluator:
  """Samples compositions and reports PJ / AUJ (see the module docstring).

  Its sampler is jitted here rather than run through `jaxvision.evaluators.inference`:
  the sampler draws each denoising step's noise for the whole batch, so padding a
  batch of compositions to the data-parallel size would change every sample.
  """

  DEFAULTS = DEFAULTS

  def __init__(self, name, cfg, ctx, predict_fns=None):
    del predict_fns
    self.name, self.every, self.cfg, self.ctx = name, int(cfg.every), cfg, ctx
    run = ctx.config
    self.records = data_lib.load_records(run.input, cfg.split)
    self.featurizer = data_lib.Featurizer(run, self.records)
    self.decode = make_decoder(run.model.input_dim, cfg.smpl_rest_joints)
    if cfg.mode not in REPLICATIONS:
      raise config_lib.ConfigError(f'evals.{name}.mode={cfg.mode!r}; known: '
                                   f'{sorted(REPLICATIONS)}')
    if cfg.compositions:
      self.compositions = read_compositions(cfg.compositions, cfg.scenario)
    else:
      self.compositions = draw_compositions(self.records, cfg.num_compositions, cfg.segments,
                                            cfg.seed)
    self.gt_jerk = float(cfg.gt_jerk) or ground_truth_jerk(
        self.records, run.input, cfg.transition_length, self.decode, cfg.seed)
    base = diffusion_lib.make_diffusion(run.diffusion.steps, run.diffusion.schedule,
                                        run.diffusion.variance)
    self.diffusion = (diffusion_lib.respaced(base, run.sampling.respacing)
                      if run.sampling.respacing else base)
    self._samplers = None
    self.scorer = None
    if cfg.t2m_workdir or cfg.t2m_checkpoint:
      from jaxvision.projects.flowmdm import evaluators_t2m  # pylint: disable=g-import-not-at-top
      from jaxvision.projects.flowmdm import t2m as t2m_project  # pylint: disable=g-import-not-at-top
      self.scorer = evaluators_t2m.T2MScorer(
          workdir=cfg.t2m_workdir, checkpoint=cfg.t2m_checkpoint,
          word_vectors=cfg.t2m_word_vectors, stats_dir=cfg.t2m_stats_dir,
          data_stats=data_lib.stats(run.input),
          captions_tokens=t2m_project.caption_tokens(run.input, cfg.split))

  def _sampler(self):
    """One jitted sampler; the BPE switch step is a traced argument."""
    if self._samplers is None:
      run, model = self.ctx.config, self.ctx.model

      def denoise(params, x, t, text_emb, seg, mask, w):
        return model.apply({'params': params}, x, t, text_emb=text_emb, segment_ids=seg,
                           mask=mask, bpe_w=w, method=model_lib.FlowMDM.denoise)

      def sample(params, rng, noise, text, seg, mask, switch_step):
        text_emb = model.apply({'params': params}, text, method=model_lib.FlowMDM.embed_texts)
        fn = sampling.make_sampler(
            lambda *a: denoise(params, *a), self.diffusion, num_original_steps=run.diffusion.steps,
            bpe_switch_step=run.sampling.bpe_switch_step,
            guidance_scale=run.sampling.guidance_scale, method=run.sampling.method,
            eta=run.sampling.eta)
        return fn(rng, noise, text_emb, seg, mask, switch_step)

      self._samplers = jax.jit(sample)
    return self._samplers

  def compose(self, params, compositions, switch_step, seed):
    """Features (B, T, F) (denormalised) for a list of compositions."""
    run = self.ctx.config
    feats = []
    bs = self.cfg.batch_size
    max_segments = max(len(c['lengths']) for c in compositions)
    total = max(sum(c['lengths']) for c in compositions)
    for start in range(0, len(compositions), bs):
      chunk = compositions[start:start + bs]
      chunk = chunk + [chunk[-1]] * (bs - len(chunk))
      seg, mask = sampling.batch_compositions([c['lengths'] for c in chunk])
      seg = np.pad(seg, ((0, 0), (0, total - seg.shape[1])), constant_values=-1)
      mask = seg >= 0
      texts = [self.featurizer.encode_texts(c['text'], max_segments) for c in chunk]
      text = np.stack([t.get('text_emb', t.get('text_tokens')) for t in texts])
      rng = jax.random.key(seed + start)
      noise = jax.random.normal(jax.random.fold_in(rng, 1), (bs, total, run.model.input_dim))
      with jax.set_mesh(self.ctx.mesh), nn.logical_axis_rules(self.ctx.rules):
        out = self._sampler()(params, rng, noise, jnp.asarray(text), jnp.asarray(seg),
                              jnp.asarray(mask), jnp.int32(switch_step))
      feats.append(np.asarray(out)[:len(compositions) - start])
    return denormalize(run.input, np.concatenate(feats))

  def run(self, params):
    reps = [self.run_once(params, self.cfg.seed + r)
            for r in range(REPLICATIONS[self.cfg.mode])]
    results = aggregate_replications([r for r, _ in reps])
    main = reps[0][1]
    lengths = [c['lengths'] for c in self.compositions]
    if self.cfg.save and self.ctx.workdir and self.ctx.process_index == 0:
      path = os.path.join(self.ctx.workdir, f'{self.name}_compositions.npz')
      np.savez(path, features=main[0].astype(np.float32), jerk_curve=main[1],
               lengths=np.array([np.pad(l, (0, max(map(len, lengths)) - len(l)))
                                 for l in lengths]),
               texts=np.array([' | '.join(c['text']) for c in self.compositions]))
    return results

  def run_once(self, params, seed):
    """(metrics, (features, jerk curve) of the main schedule) of one replication."""
    run = self.ctx.config
    steps = [run.sampling.bpe_switch_step] + [int(s) for s in self.cfg.bpe_switch_steps]
    results, main = {}, None
    lengths = [c['lengths'] for c in self.compositions]
    gt = None
    for k, s in enumerate(dict.fromkeys(steps)):
      feats = self.compose(params, self.compositions, s, seed)
      curve = transition_jerk(feats, lengths, self.cfg.transition_length, self.decode)
      suffix = '' if k == 0 else f'_s{s}'
      results[f'pj{suffix}'] = jerk_lib.peak_jerk(curve)
      results[f'auj{suffix}'] = jerk_lib.area_under_jerk(curve, self.gt_jerk)
      if self.scorer is not None:
        from jaxvision.projects.flowmdm import evaluators_t2m  # pylint: disable=g-import-not-at-top
        gt = gt or [denormalize(run.input, r.motion) for r in self.records]
        t2m = evaluators_t2m.composition_metrics(self.scorer, feats, self.compositions, gt,
                                                 self.cfg.transition_length, seed)
        if self.cfg.extrapolation:    # one repeated text: upstream skips text matching
          t2m = {n: v for n, v in t2m.items() if 'r_precision' not in n and 'matching' not in n}
        results.update({f'{name}{suffix}': v for name, v in t2m.items()})
      if k == 0:
        main = (feats, curve)
    results['gt_jerk'] = self.gt_jerk
    if self.scorer is not None:
      from jaxvision.projects.flowmdm import evaluators_t2m  # pylint: disable=g-import-not-at-top
      results.update(evaluators_t2m.ground_truth_metrics(
          self.scorer, gt, [r.texts[0] for r in self.records], seed))
    return results, main


# The project's own `config.evals` type (jaxvision.evaluators builds it).
EVALUATORS = {'composition': CompositionEvaluator}
