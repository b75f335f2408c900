"""Multi-process start-up (`--config.distributed=True`) and agreement between processes.

JAX's multi-controller runtime runs one copy of the binary per host (or per GPU); each
calls `jax.distributed.initialize`, which needs the coordinator's `host:port`, the
number of processes and this process's id.  They come from the environment, because
they differ between processes while the config is shared:

  JAX_COORDINATOR_ADDRESS   host:port of process 0 (any free port; read by JAX itself)
  JAX_NUM_PROCESSES         number of processes
  JAX_PROCESS_ID            this process's id, 0 .. JAX_NUM_PROCESSES - 1

Any of them left unset is taken from a cluster JAX detects by itself: SLURM
(`srun`: SLURM_NTASKS, SLURM_PROCID, the first node of SLURM_STEP_NODELIST), Open MPI
(`mpirun`), Kubernetes and Cloud TPU pod slices (all three).  A value that is still
missing, or malformed, stops the run with one line naming the variable.

Failure detection: a process that stops sending heartbeats (killed, or its host
gone) for `JAXVISION_HEARTBEAT_TIMEOUT_S` seconds (default 100, JAX's) makes the
coordination service stop the others with an error; a collective that a dead peer
was part of fails at once on CPU (gloo closes the connection) and at the heartbeat
timeout on accelerators.  `JAXVISION_INIT_TIMEOUT_S` (default 300) bounds the wait for
every process to join.

Preemption: when one process gets SIGTERM, JAX's preemption sync manager tells the
others, and `reached_preemption_sync_point(step)` is true on every process at the same
step (t5x/MaxText and orbax do the same), so all processes save that step together.
"""

from __future__ import annotations

import os

from absl import logging
import jax

from jaxvision import config as config_lib

ADDRESS = 'JAX_COORDINATOR_ADDRESS'
NUM_PROCESSES = 'JAX_NUM_PROCESSES'
PROCESS_ID = 'JAX_PROCESS_ID'
HEARTBEAT_TIMEOUT = 'JAXVISION_HEARTBEAT_TIMEOUT_S'
INIT_TIMEOUT = 'JAXVISION_INIT_TIMEOUT_S'

# jax.distributed.initialize's own refusals, by the variable that supplies the value.
_JAX_MESSAGES = (('coordinator_address', ADDRESS), ('Number of processes', NUM_PROCESSES),
                 ('process id', PROCESS_ID))


class DistributedError(config_lib.ConfigError):
  """The multi-process environment is missing or malformed (one line, names the variable)."""


def _int_env(name: str, minimum: int, default: int | None = None) -> int | None:
  raw = os.environ.get(name)
  if raw is None or raw.strip() == '':
    return default
  try:
    value = int(raw)
  except ValueError:
    value = None
  if value is None or value < minimum:
    raise DistributedError(f'environment variable {name}={raw!r} must be an integer >= '
                           f'{minimum}')
  return value


def settings() -> dict[str, object]:
  """The arguments for `jax.distributed.initialize` that the environment sets."""
  address = os.environ.get(ADDRESS) or None
  if address is not None and (':' not in address or not address.rsplit(':', 1)[1].isdigit()):
    raise DistributedError(f'environment variable {ADDRESS}={address!r} must be host:port '
                           '(the host of process 0 and a free port)')
  num = _int_env(NUM_PROCESSES, 1)
  pid = _int_env(PROCESS_ID, 0)
  if num is not None and pid is not None and pid >= num:
    raise DistributedError(f'environment variable {PROCESS_ID}={pid} must be below '
                           f'{NUM_PROCESSES}={num}')
  return dict(coordinator_address=address, num_processes=num, process_id=pid,
              heartbeat_timeout_seconds=_int_env(HEARTBEAT_TIMEOUT, 1, 100),
              initialization_timeout=_int_env(INIT_TIMEOUT, 1, 300))


def initialize() -> None:
  """`jax.distributed.initialize` from the environment; one-line errors naming the variable."""
  if jax.distributed.is_initialized():
    return
  kwargs = settings()
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, TypeError) as e:
    for fragment, variable in _JAX_MESSAGES:
      if fragment in str(e):
        raise DistributedError(
            f'--config.distributed=True needs {variable}: set it (and {ADDRESS}, '
            f'{NUM_PROCESSES}, {PROCESS_ID}; see BUILD.md "Multi-host") or run under a '
            'cluster JAX detects (SLURM, Open MPI, Kubernetes, Cloud TPU)') from e
    raise DistributedError(f'jax.distributed.initialize failed: {" ".join(str(e).split())}'
                           ) from e
  except RuntimeError as e:   # e.g. the coordinator never answered within the timeout
    raise DistributedError(
        f'jax.distributed.initialize (coordinator {kwargs["coordinator_address"]}) failed: '
        f'{" ".join(str(e).split())[:300]}') from e
  logging.info('process %d of %d, %d local / %d global devices', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def reached_stop_step(step: int, local_request: bool) -> bool:
  """Whether to save and stop after `step`: the same answer on every process.

  One process: its own SIGTERM flag.  Several: JAX's preemption sync point (a SIGTERM
  to any process is propagated; every process stops at the same step).
  """
  if jax.process_count() == 1:
    return local_request
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(multihost_utils.reached_preemption_sync_point(step))


# What a collective or the coordination service says when a peer process is gone.
_PEER_GONE = ('Gloo', 'Connection reset by peer', 'Connection closed by peer',
              'heartbeat timeout', 'stopped sending heartbeats', 'task is set to ERROR')


def peer_failure(error: BaseException) -> str | None:
  """One line for an error caused by another process of the run dying, else None."""
  text = ' '.join(str(error).split())
  if jax.process_count() <= 1 or not any(sign in text for sign in _PEER_GONE):
    return None
  return (f'another process of this run stopped (killed, crashed or its host lost): '
          f'{text[:300]}. Rerun the same command on every process: it resumes from the newest '
          'checkpoint')
