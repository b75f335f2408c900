"""Metric writers: TensorBoard event files + log lines + a JSON-lines file.

`metrics.jsonl` in the workdir holds one `{"step": s, "<name>": value, ...}` record per
write, flushed as it is written (a killed run loses no record it logged): easy to read
back in a colab or a test (`read_metrics`) without TensorBoard.
Only process 0 writes files; every process logs.

TensorBoard's event files are written with the `tensorboard` package's protos and
record writer, not clu's `SummaryWriter`:
that one goes through `tf.summary`, and importing TensorFlow costs the binary ~10 s of
start-up and prints C++ log lines that `TF_CPP_MIN_LOG_LEVEL` no longer silences
(TF >= 2.16 logs through absl before its log flags are read).  The default run imports
no TensorFlow at all; a tfds dataset still imports it when it is used.  Scalars are
`simple_value` summaries and hparams the hparams plugin's session summary: the same
tags and steps clu wrote, and what TensorBoard reads.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from typing import Any, Mapping, Sequence

from absl import logging
import numpy as np

METRICS_FILE = 'metrics.jsonl'


def _to_float(value: Any) -> float | None:
  value = np.asarray(value)
  if value.size != 1:
    return None
  v = float(value.reshape(()))
  return v if math.isfinite(v) else str(v)  # JSON has no NaN; keep it readable


class LoggingWriter:
  """Every record as an absl DEBUG line (shown with `--verbosity=1`: the console's own
  progress and eval lines already carry the numbers)."""

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    values = ', '.join(f'{k}={_to_float(v)}' for k, v in sorted(scalars.items()))
    logging.debug('[%d] %s', step, values)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    logging.debug('[Hyperparameters] %s', dict(hparams))

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def _hparam_value(value: Any) -> bool | int | float | str:
  if isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, np.generic):
    return value.item()
  return str(value)


class TensorBoardWriter:
  """Scalars and hparams as a TensorBoard event file in `logdir` (no TensorFlow).

  The file is written directly as TFRecords (`tensorboard`'s `RecordWriter`, its
  pure-Python CRC): `tensorboard`'s own `EventFileWriter` would import TensorFlow for
  its file system layer when TensorFlow is installed.
  """

  def __init__(self, logdir: str):
    # pylint: disable=g-import-not-at-top  # only process 0 needs them
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    os.makedirs(logdir, exist_ok=True)
    name = (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.'
            f'{os.getpid()}.jaxvision')
    self._file = open(os.path.join(logdir, name), 'wb')
    self._records = RecordWriter(self._file)
    self._records.write(event_pb2.Event(wall_time=time.time(),
                                        file_version='brain.Event:2').SerializeToString())

  def _add(self, step: int, summary: Any) -> None:
    from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
    self._records.write(event_pb2.Event(wall_time=time.time(), step=int(step),
                                        summary=summary).SerializeToString())

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    values = []
    for tag, value in scalars.items():
      value = np.asarray(value)
      if value.size == 1:   # NaN/Inf are kept: TensorBoard shows them
        values.append(summary_pb2.Summary.Value(tag=tag,
                                                simple_value=float(value.reshape(()))))
    if values:
      self._add(step, summary_pb2.Summary(value=values))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    from tensorboard.plugins.hparams import summary_v2  # pylint: disable=g-import-not-at-top
    self._add(0, summary_v2.hparams_pb({k: _hparam_value(v) for k, v in hparams.items()}))

  def flush(self) -> None:
    if not self._file.closed:
      self._file.flush()

  def close(self) -> None:
    if not self._file.closed:
      self._file.close()


class MultiWriter:
  """Writes every record to each of `writers`."""

  def __init__(self, writers: Sequence[Any]):
    self._writers = tuple(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    for w in self._writers:
      w.write_scalars(step, scalars)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    for w in self._writers:
      w.write_hparams(hparams)

  def flush(self) -> None:
    for w in self._writers:
      w.flush()

  def close(self) -> None:
    for w in self._writers:
      w.close()


class JsonlWriter:
  """Appends scalars (and hparams) to `<logdir>/metrics.jsonl`."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    self._file = open(os.path.join(logdir, METRICS_FILE), 'a', encoding='utf-8')

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    record = {'step': int(step)}
    record.update({k: _to_float(v) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + '\n')
    # Flushed per record: a killed run keeps every record it logged (fsync in `flush`).
    self._file.flush()

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._file.write(json.dumps({'hparams': {k: str(v) for k, v in hparams.items()}}) + '\n')
    self._file.flush()

  def flush(self) -> None:
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self.flush()
      self._file.close()


def make_writer(workdir: str, process_index: int) -> MultiWriter:
  """TensorBoard + JSONL + log lines on process 0, log lines only elsewhere."""
  if process_index != 0:
    return MultiWriter([LoggingWriter()])
  return MultiWriter([LoggingWriter(), TensorBoardWriter(workdir), JsonlWriter(workdir)])


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All scalar records of `metrics.jsonl`, in the order they were written."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8') as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except ValueError:
      if i == len(lines) - 1 and not line.endswith('\n'):
        break   # the record a killed process was writing: every earlier one is whole
      raise ValueError(f'{path}: line {i + 1} is not a JSON record: {line[:80]!r}') from None
  return [r for r in records if 'step' in r]
