"""Device mesh and logical-axis sharding rules.

Models name the axes of their parameters and activations logically (`batch`, `embed`,
`mlp`, `heads`, ...) with `flax.linen.with_logical_partitioning`; the config maps those
names onto the mesh axes `data`, `fsdp` and `model` with first-match rules, as in
maxtext.  The same code runs on one CPU, on 8 simulated CPU devices and on a pod.

A rule applies to a dimension only if the mesh axes it names are still unused by the
same array and their total size divides the dimension; otherwise the dimension stays
replicated (logged once), so that e.g. a 10-way classifier does not fail to shard on a
4-way model axis.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from absl import logging
import flax.linen as nn
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P
import numpy as np

MESH_AXES = ('data', 'fsdp', 'model')
# Mesh axes over which the batch dimension is split.
BATCH_AXES = ('data', 'fsdp')

# Default logical -> mesh rules: data parallel over `data`, parameters and optimizer
# state split over `fsdp` along their embedding dimension, tensor parallel over `model`.
DEFAULT_RULES = (
    ('batch', BATCH_AXES),
    ('embed', 'fsdp'),
    ('mlp', 'model'),
    ('heads', 'model'),
    ('classes', 'model'),
    ('vocab', 'model'),
    ('kv', None),
    ('seq', None),
    ('norm', None),
    ('patch', None),
    ('channels', None),
)


def make_mesh(mesh_config: dict[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Mesh with axes (data, fsdp, model); one size may be -1 to take the rest.

  Axis types are Auto, so linen's logical constraints guide the compiler.
  """
  devices = list(jax.devices() if devices is None else devices)
  unknown = set(mesh_config) - set(MESH_AXES)
  if unknown:
    raise ValueError(f'unknown mesh axes {sorted(unknown)}; valid axes are {MESH_AXES}')
  sizes = [int(mesh_config.get(a, 1)) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f'at most one mesh axis may be -1, got {dict(zip(MESH_AXES, sizes))}')
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f'mesh {dict(zip(MESH_AXES, sizes))} does not divide {len(devices)} devices')
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) > len(devices):
    raise ValueError(
        f'mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, '
        f'but {len(devices)} are available')
  if math.prod(sizes) < len(devices):
    logging.warning('mesh %s uses %d of %d devices', dict(zip(MESH_AXES, sizes)),
                    math.prod(sizes), len(devices))
    devices = devices[:math.prod(sizes)]
  return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * len(sizes),
                       devices=devices)


def normalize_rules(rules: Sequence[Sequence[Any]]) -> tuple[tuple[str, Any], ...]:
  """Rules from config (lists from the command line) as ((logical, mesh_axes), ...)."""
  out = []
  for rule in rules:
    if len(rule) != 2:
      raise ValueError(f'a sharding rule is (logical_name, mesh_axes), got {rule!r}')
    name, axes = rule
    if isinstance(axes, list):
      axes = tuple(axes)
    for a in (axes if isinstance(axes, tuple) else (axes,)):
      if a is not None and a not in MESH_AXES:
        raise ValueError(f'sharding rule {rule!r} names mesh axis {a!r}; valid: {MESH_AXES}')
    out.append((name, axes))
  return tuple(out)


def _spec_for(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
              rules: Sequence[tuple[str, Any]]) -> P:
  used: set[str] = set()
  spec = []
  for name, dim in zip(names, shape):
    chosen = None
    for logical, axes in rules:
      if logical != name:
        continue
      axes_t = tuple(a for a in (axes if isinstance(axes, tuple) else (axes,)) if a is not None)
      axes_t = tuple(a for a in axes_t if mesh.shape[a] > 1)
      if not axes_t:
        break
      size = math.prod(mesh.shape[a] for a in axes_t)
      if used.intersection(axes_t) or dim % size:
        logging.log_first_n(logging.INFO, 'dimension %s=%d stays replicated (mesh axes %s)',
                            10, name, dim, axes_t)
        break
      chosen = axes_t if len(axes_t) > 1 else axes_t[0]
      used.update(axes_t)
      break
    spec.append(chosen)
  return P(*spec)


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
  """NamedShardings for a tree of (abstract) LogicallyPartitioned / plain leaves.

  Plain (un-annotated) leaves are replicated.  The result has the structure of the
  unboxed tree.
  """
  def one(leaf):
    if isinstance(leaf, nn.LogicallyPartitioned):
      value = leaf.value
      return NamedSharding(mesh, _spec_for(leaf.names, value.shape, mesh, rules))
    return NamedSharding(mesh, P())
  return jax.tree.map(one, boxed_tree, is_leaf=lambda x: isinstance(x, nn.Partitioned))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Splits the leading (batch) dimension over the data-parallel mesh axes."""
  axes = tuple(a for a in BATCH_AXES if mesh.shape[a] > 1)
  lead = axes if len(axes) > 1 else (axes[0] if axes else None)
  return NamedSharding(mesh, P(lead, *([None] * (ndim - 1))))


def data_parallel_size(mesh: Mesh) -> int:
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def host_batch_to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each process's local batch shard into one globally sharded array."""
  return {
      k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), np.asarray(v))
      for k, v in batch.items()
  }
