"""Metric writers: TensorBoard event files + log lines (clu) + a JSON-lines file.

`metrics.jsonl` in the workdir holds one `{"step": s, "<name>": value, ...}` record per
write, flushed as it is written (a killed run loses no record it logged): easy to read
back in a colab or a test (`read_metrics`) without TensorBoard.
Only process 0 writes files; every process logs.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

from clu import metric_writers
from clu.metric_writers import interface
import numpy as np

METRICS_FILE = 'metrics.jsonl'


def _to_float(value: Any) -> float | None:
  value = np.asarray(value)
  if value.size != 1:
    return None
  v = float(value.reshape(()))
  return v if math.isfinite(v) else str(v)  # JSON has no NaN; keep it readable


class JsonlWriter(interface.MetricWriter):
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

  def write_summaries(self, step, values, metadata=None) -> None:
    del step, values, metadata

  def write_images(self, step, images) -> None:
    del step, images

  def write_videos(self, step, videos) -> None:
    del step, videos

  def write_audios(self, step, audios, *, sample_rate) -> None:
    del step, audios, sample_rate

  def write_texts(self, step, texts) -> None:
    del step, texts

  def write_histograms(self, step, arrays, num_buckets=None) -> None:
    del step, arrays, num_buckets

  def flush(self) -> None:
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self.flush()
      self._file.close()


def make_writer(workdir: str, process_index: int) -> metric_writers.MetricWriter:
  """TensorBoard + logging (+ JSONL) on process 0, logging only elsewhere."""
  if process_index != 0:
    return metric_writers.create_default_writer(None, just_logging=True, asynchronous=False)
  tb_and_log = metric_writers.create_default_writer(workdir, asynchronous=False)
  return metric_writers.MultiWriter([tb_and_log, JsonlWriter(workdir)])


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All scalar records of `metrics.jsonl`, in the order they were written."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8') as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if 'step' in r]
