"""Loading a finished run: its config, its project's model and its trained parameters.

A run of the binary (`python -m jaxvision.train --config=... --workdir=W`) leaves
`W/config.json` (the validated config, written before training) and orbax checkpoints
under `W/checkpoints/<step>/`.  `load_run(W)` turns that back into what a caller needs
to use the run — a frozen backbone (FroFA), a generator to sample from (FlowMDM's
`api`), a trained metric network (FlowMDM's T2M evaluator), the first stage of a
multi-stage pipeline:

    config, model, params = runs.load_run('workdirs/digits_vit')
    logits, out = model.apply({'params': params}, images, train=False)

The model comes from the run's own project (`config.project`,
`jaxvision.projects.<name>.make_model(config.model)`), so nothing outside the package
(no experiment file, no repository checkout) is needed to rebuild it.  Parameters are
host numpy arrays (`checkpoint.load_params`); put them on devices with the caller's
shardings.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple, Sequence

import ml_collections

from jaxvision import checkpoint
from jaxvision import projects

CONFIG_FILE = 'config.json'


class Run(NamedTuple):
  config: ml_collections.ConfigDict
  model: Any
  params: Any


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run of the binary wrote into `workdir`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{workdir!r} is not a jaxvision run: it has no {CONFIG_FILE} '
                            '(written by `python -m jaxvision.train --workdir=...`)')
  with open(path) as f:
    try:
      raw = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON ({e})') from e
  if not isinstance(raw, dict) or 'project' not in raw:
    raise ValueError(f"{path}: a run config must be a JSON object with a 'project' key")
  return ml_collections.ConfigDict(raw)


def has_checkpoint(workdir: str) -> bool:
  """Whether `workdir` holds at least one finished checkpoint."""
  directory = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))


def load_run(workdir: str, step: int | None = None, *,
             projects_allowed: Sequence[str] | None = None) -> Run:
  """(config, model, params) of the run in `workdir`; params of `step` (default: latest).

  `projects_allowed` restricts the run's `config.project` (an error names what was
  found), for callers that need a particular kind of run.
  """
  config = read_config(workdir)
  if projects_allowed is not None and config.project not in projects_allowed:
    raise ValueError(f'{workdir}: a run of project {config.project!r}; expected one of '
                     f'{list(projects_allowed)}')
  project = projects.load_project(config.project)
  model = project.make_model(config.model)
  if not has_checkpoint(workdir):
    raise FileNotFoundError(f'{workdir}: the run has a {CONFIG_FILE} but no checkpoint '
                            'under checkpoints/ (did it finish a step?)')
  if step is not None:
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints'))
                   if d.isdigit())
    if step not in steps:
      raise FileNotFoundError(f'{workdir}: no checkpoint of step {step} (has {steps})')
  params = checkpoint.load_params(workdir, step)
  return Run(config, model, params)
