"""Config schema checks: every key a run reads is declared once, with its default.

A typo in a config file or on the command line (`--config.optimzer.name=sgd`) must not
silently fall back to a default, and a forgotten required key must not surface as an
AttributeError deep inside a jitted function.  `merge_with_defaults` walks the user's
config against a schema (a ConfigDict of defaults, where `REQUIRED` marks keys without
one) and raises `ConfigError` naming the full dotted path of the first unknown or
missing key, with the closest valid spelling.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

import ml_collections
import numpy as np

from jaxvision import optim
from jaxvision import projects
from jaxvision import sharding as sharding_lib

# Marks a key that has no default: the user's config must set it.
REQUIRED = '<required>'
# Marks a sub-dict whose keys are free-form (e.g. `evals`, where each key names an
# evaluator): only the user's own entries are kept, checked by whoever consumes them.
FREE_FORM = '<free-form>'


class ConfigError(ValueError):
  """A config key is unknown, missing, or has a value of the wrong kind."""


def _suggest(key: str, valid: list[str]) -> str:
  close = difflib.get_close_matches(key, valid, n=1)
  return f"; did you mean '{close[0]}'?" if close else ''


def merge_with_defaults(
    config: ml_collections.ConfigDict | dict,
    schema: ml_collections.ConfigDict | dict,
    path: str = 'config',
) -> ml_collections.ConfigDict:
  """Returns `schema` overridden by `config`, checking every key on the way.

  Raises:
    ConfigError: a key of `config` is not in `schema` (names it and the valid keys),
      or a `REQUIRED` key of `schema` is absent from `config`.
  """
  config = dict(config.items()) if config is not None else {}
  schema = dict(schema.items())
  out = {}
  for key, value in config.items():
    if key not in schema:
      raise ConfigError(
          f"unknown config key '{path}.{key}'{_suggest(key, list(schema))} "
          f"(valid keys: {', '.join(sorted(schema))})")
  for key, default in schema.items():
    full = f'{path}.{key}'
    if key not in config:
      if isinstance(default, str) and default == REQUIRED:
        raise ConfigError(f"missing required config key '{full}'")
      if isinstance(default, str) and default == FREE_FORM:
        default = {}
      out[key] = _plain(default)
      continue
    value = config[key]
    if isinstance(default, str) and default == FREE_FORM:
      out[key] = _plain(value)
    elif _is_dict(default) and default:
      if not _is_dict(value):
        raise ConfigError(f"config key '{full}' must be a dict of settings, got {value!r}")
      out[key] = merge_with_defaults(value, default, full)
    else:
      out[key] = _plain(value)
  return ml_collections.ConfigDict(out)


def check_keys(config: Any, allowed: dict[str, Any], path: str) -> ml_collections.ConfigDict:
  """Like `merge_with_defaults` for a plain dict of defaults (used by sub-components)."""
  return merge_with_defaults(config, ml_collections.ConfigDict(allowed), path)


def _is_dict(x: Any) -> bool:
  return isinstance(x, (dict, ml_collections.ConfigDict))


def _plain(x: Any) -> Any:
  if isinstance(x, ml_collections.ConfigDict):
    return x.to_dict()
  return x


def _int(config: ml_collections.ConfigDict, key: str) -> int:
  node = config
  for part in key.split('.'):
    node = node[part]
  if isinstance(node, bool) or not isinstance(node, (int, np.integer)):
    raise ConfigError(f'config.{key} must be an integer, got {node!r}')
  return int(node)


def check_trainer_values(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the trainer's numeric settings up front (a bad one fails here, by name, not
  as a ZeroDivisionError or IndexError mid-run, nor as a run that never saves)."""
  if _int(config, 'total_steps') < 0:
    raise ConfigError(f'config.total_steps must be >= 0 (0 = evaluate only), got '
                      f'{config.total_steps}')
  if 'log_every' in config and _int(config, 'log_every') < 1:
    raise ConfigError(f'config.log_every must be >= 1 (steps between progress lines), got '
                      f'{config.log_every}')
  if 'checkpoint' in config:   # evaluate-only projects have no checkpoints
    if _int(config, 'checkpoint.every') < 1:
      raise ConfigError(f'config.checkpoint.every must be >= 1 (steps between checkpoints; '
                        f'a run always saves its last step), got {config.checkpoint.every}')
    _int(config, 'checkpoint.keep')
  fill = []
  for axis, size in config.mesh.items():
    size = _int(config, f'mesh.{axis}')
    if size == -1:
      fill.append(axis)
    elif size < 1:
      raise ConfigError(f'config.mesh.{axis} must be a positive number of devices, or -1 '
                        f'(all remaining devices), got {size}')
  if len(fill) > 1:
    raise ConfigError(f'at most one mesh axis can be -1 (all remaining devices), got '
                      f'{", ".join("config.mesh." + a for a in fill)}')
  return config


def flag_error_line(error: BaseException, argv: list[str]) -> str:
  """One line for a command line that ml_collections' flag parser refused.

  A misspelt override (`--config.optimzer.name=sgd`) surfaces from the parser as a
  KeyError/AttributeError about one path component; this names the flag and the
  suggestion.  A config file that does not load names the file.
  """
  text = str(error.args[0]) if error.args else str(error)
  lines = [l.strip().strip("'\"") for l in text.splitlines() if l.strip()]
  overrides = [a for a in argv if a.startswith('--config.')]
  key = lines[0] if lines else ''
  suggestion = ''
  for line in lines[1:]:
    if line.startswith('Did you mean'):
      quoted = line.split('"')
      suggestion = f"; did you mean '{quoted[1]}'?" if len(quoted) > 2 else ''
  flag = next((a for a in overrides if f'.{key}.' in a.split('=')[0] + '.'), None)
  if flag is not None and isinstance(error, (KeyError, AttributeError)):
    return f"unknown config key '{key}' in {flag.split('=')[0]}{suggestion}"
  paths = [a.split('=', 1)[1].split(':')[0] for a in argv if a.startswith('--config=')]
  if paths and not os.path.exists(paths[0]):
    return f'config file not found: {paths[0]}'
  return ' '.join(' '.join(lines).split())[:500] or type(error).__name__


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses a config-file argument `--config=file.py:tiny,variant=B/16` (big_vision style).

  A bare word sets that boolean to True; `key=value` takes the type of the default.
  Unknown names are errors.
  """
  out = dict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, eq, value = item.partition('=')
    if key not in out:
      raise ConfigError(f'unknown config argument {key!r}; valid: {sorted(out)}')
    if not eq:
      out[key] = True
    elif isinstance(out[key], bool):
      out[key] = value.lower() in ('1', 'true', 'yes')
    elif out[key] is None:
      out[key] = value
    else:
      out[key] = type(out[key])(value)
  return ml_collections.ConfigDict(out)


# ------------------------------------------------------------------ the run's schema
# The trainer's keys live here, not in train.py, so that experiment files (which call
# `with_defaults`) and the binary both import this module and neither imports the other.


def trainer_schema() -> ml_collections.ConfigDict:
  """Every key the trainer reads, with its default (REQUIRED: no default)."""
  return ml_collections.ConfigDict({
      'project': REQUIRED,
      'seed': 0,
      'total_steps': REQUIRED,     # 0 = evaluate only
      'log_every': 50,             # progress line + train metrics
      'mesh': {'data': -1, 'fsdp': 1, 'model': 1},
      'sharding_rules': [list(r) for r in sharding_lib.DEFAULT_RULES],
      'checkpoint': {'every': 1000, 'keep': 3, 'asynchronous': True},
      'optimizer': optim.default_optimizer_config(),
      'schedule': optim.default_schedule_config(),
      'distributed': False,        # call jax.distributed.initialize() (multi-host)
      'allow_config_change': False,  # resume a workdir whose config.json differs
      # A jax.profiler trace of `num_steps` steps from `start_step` (-1 = off) into
      # <workdir>/profile, for TensorBoard's profile plugin / Perfetto.
      'profile': {'start_step': -1, 'num_steps': 5},
      # An exponential moving average (EMA / teacher) of the params that fully match
      # `params` (a regex on '/'-joined names), updated every `every` steps:
      # ema <- decay * ema + (1 - decay) * params.  decay 0 = off.  `evaluate`: the
      # evaluators get the EMA weights (merged into the params) instead of the raw ones.
      'ema': {'decay': 0.0, 'every': 1, 'params': '.*', 'evaluate': False},
      # Multi-stage pipelines: start a fresh run from an earlier run's checkpoint.
      # `from_workdir`: that run's workdir ('' = off); `from_step`: -1 = its latest;
      # `restore`: regexes on '/'-joined state paths ('params/backbone/.*',
      # 'batch_stats/.*', 'ema/.*') naming the sub-trees taken from it; the rest keeps
      # its fresh initialisation.  Leaves are read straight into their shardings.
      'init': {'from_workdir': '', 'from_step': -1, 'restore': ['params/.*']},
      'model': {},
      'input': {},
      'evals': FREE_FORM,
  })


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Trainer keys + the project's own `model`/`input`/`evals` defaults, all checked.

  The project's kind (`jaxvision/projects/__init__.py`) decides which trainer keys
  apply: an evaluate-only project has no `model`, optimizer, schedule, EMA or init.
  """
  if 'project' not in config:
    raise ConfigError("missing required config key 'config.project'")
  project = projects.load_project(config.project)
  schema = trainer_schema().to_dict()
  if projects.kind_of(project) != projects.TRAINED:
    for key in projects.TRAINING_ONLY_KEYS:
      del schema[key]
    schema['total_steps'] = 0    # nothing to train; train() checks it stays 0
  proj = project.default_config()
  for section in ('model', 'input'):
    if section in schema or section in proj:
      schema[section] = proj.get(section, ml_collections.ConfigDict())
  extra = set(proj) - {'model', 'input', 'evals'}
  for key in extra:  # project-level keys (e.g. `loss`) that the project reads itself
    if key in schema and _is_dict(schema[key]) and _is_dict(proj[key]):
      clash = set(schema[key]) & set(proj[key])
      if clash:
        raise ConfigError(f'project {config.project!r} redefines trainer keys '
                          f'{sorted(clash)} of config.{key}')
      schema[key] = {**dict(schema[key].items()), **dict(proj[key].items())}
    else:
      schema[key] = proj[key]
  return check_trainer_values(merge_with_defaults(config, ml_collections.ConfigDict(schema)))


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with every key the run reads (trainer + project defaults) filled in.

  Experiment files return `with_defaults(c)`, so that any key, not only the ones the
  file sets, can be overridden from the command line (`--config.checkpoint.keep=5`),
  and a misspelt override is rejected by name.
  """
  return validate_config(config)
