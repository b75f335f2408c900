"""Using a trained FlowMDM: load a run, compose motions from texts, decode joints.

  run = api.load_run('workdirs/flowmdm_tiny')
  feats = api.compose(run, ['a person walks forward', 'a person jumps forward'], [40, 35])
  joints = api.to_joints(run, feats)          # (T, J, 3), metres, y up

`compose` is FlowMDM's composition sampler (one sequence, every frame conditioned on
its own segment's text) with the run's BPE schedule and guidance unless overridden.
`compose_file(run, 'composition_babel.json')` samples every composition of a JSON in
upstream's formats (`runners/jsons/*.json`: {"text": [...], "lengths": [...]}, or an
evaluation set: a list of them, optionally filtered by "scenario").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import runs
from jaxvision.data import motion_representation as mr
from jaxvision.projects.flowmdm import data as data_lib
from jaxvision.diffusion import gaussian as diffusion_lib
from jaxvision.projects.flowmdm import model as model_lib
from jaxvision.projects.flowmdm import sampling


@dataclasses.dataclass
class Run:
  config: ml_collections.ConfigDict
  model: Any
  params: Any
  featurizer: Any
  samplers: dict = dataclasses.field(default_factory=dict)


def load_run(workdir: str, step: int | None = None) -> Run:
  """A trained FlowMDM run (`jaxvision.runs.load_run`) with its text featurizer."""
  config, model, params = runs.load_run(workdir, step, projects_allowed=('flowmdm',))
  return Run(config, model, params, data_lib.Featurizer(config, [None]))


def compose(run: Run, texts: Sequence[str], lengths: Sequence[int], *, seed: int = 0,
            bpe_switch_step: int | None = None, guidance_scale: float | None = None,
            respacing: str | None = None, method: str | None = None) -> np.ndarray:
  """Denormalised features (sum(lengths), F) of one composition."""
  if len(texts) != len(lengths):
    raise ValueError(f'{len(texts)} texts but {len(lengths)} lengths')
  c = run.config
  s = c.sampling
  base = diffusion_lib.make_diffusion(c.diffusion.steps, c.diffusion.schedule, c.diffusion.variance)
  spacing = s.respacing if respacing is None else respacing
  diff = diffusion_lib.respaced(base, spacing) if spacing else base
  seg, mask = sampling.composition_inputs(lengths)
  enc = run.featurizer.encode_texts(list(texts), len(texts))
  text = jnp.asarray(enc.get('text_emb', enc.get('text_tokens')))[None]

  def denoise(x, t, text_emb, seg_, mask_, w):
    return run.model.apply({'params': run.params}, x, t, text_emb=text_emb, segment_ids=seg_,
                           mask=mask_, bpe_w=w, method=model_lib.FlowMDM.denoise)

  text_emb = run.model.apply({'params': run.params}, text, method=model_lib.FlowMDM.embed_texts)
  key = (spacing, s.guidance_scale if guidance_scale is None else guidance_scale,
         s.method if method is None else method)
  if key not in run.samplers:     # one compiled sampler per setting; BPE step is traced
    run.samplers[key] = jax.jit(sampling.make_sampler(
        denoise, diff, num_original_steps=c.diffusion.steps, bpe_switch_step=s.bpe_switch_step,
        guidance_scale=key[1], method=key[2], eta=s.eta))
  switch = s.bpe_switch_step if bpe_switch_step is None else bpe_switch_step
  sampling.bpe_weight(0, c.diffusion.steps, int(switch))      # validates the step
  rng = jax.random.key(seed)
  noise = jax.random.normal(jax.random.fold_in(rng, 1), (1, seg.shape[1], c.model.input_dim))
  out = run.samplers[key](rng, noise, text_emb, jnp.asarray(seg), jnp.asarray(mask),
                          jnp.int32(switch))
  mean, std = data_lib.stats(c.input)
  return np.asarray(out[0]) * std + mean


def compose_file(run: Run, path: str, *, scenario: str = '', seed: int = 0,
                 **kwargs) -> list[np.ndarray]:
  """Denormalised features of every composition in an upstream JSON (see the module
  docstring); composition i is sampled with seed + i, `kwargs` as `compose`."""
  from jaxvision.projects.flowmdm import evaluators  # pylint: disable=g-import-not-at-top
  return [compose(run, c['text'], c['lengths'], seed=seed + i, **kwargs)
          for i, c in enumerate(evaluators.read_compositions(path, scenario))]


def to_joints(run_or_dim, features) -> np.ndarray:
  """Joint positions (..., T, J, 3) of denormalised HumanML3D-style features."""
  dim = run_or_dim.config.model.input_dim if isinstance(run_or_dim, Run) else int(run_or_dim)
  return mr.recover_from_ric(np.asarray(features, np.float64), mr.num_joints_from_dim(dim))
