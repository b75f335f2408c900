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
from typing import Any

import ml_collections

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


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with every key the run reads (trainer + project defaults) filled in.

  Experiment files return `with_defaults(c)`, so that any key, not only the ones the
  file sets, can be overridden from the command line (`--config.checkpoint.keep=5`),
  and a misspelt override is rejected by name.
  """
  from jaxvision import train  # pylint: disable=g-import-not-at-top
  return train.validate_config(config)
