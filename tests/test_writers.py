"""jaxvision.writers: the JSON-lines metric file (flushed per record) and `read_metrics`."""

import json
import math
import os

import numpy as np
import pytest

from jaxvision import writers


def _lines(workdir):
  with open(os.path.join(workdir, writers.METRICS_FILE), encoding='utf-8') as f:
    return [json.loads(line) for line in f]


def test_each_record_is_on_disk_before_the_writer_is_closed(tmp_path):
  w = writers.JsonlWriter(str(tmp_path))
  w.write_scalars(3, {'loss': np.float32(0.25), 'acc': np.array([0.5])})
  # Another reader (a colab, a killed run's successor) sees it without flush/close.
  assert _lines(tmp_path) == [{'step': 3, 'loss': 0.25, 'acc': 0.5}]
  w.write_hparams({'lr': 1e-3, 'model': 'ViT'})
  w.write_scalars(4, {'loss': float('nan'), 'hist': np.zeros(3), 'inf': -np.inf})
  w.close()
  w.close()   # idempotent
  lines = _lines(tmp_path)
  assert lines[1] == {'hparams': {'lr': '0.001', 'model': 'ViT'}}
  # JSON has no NaN: non-finite values are kept readable as strings; arrays of more than
  # one value are not scalars (None).
  assert lines[2] == {'step': 4, 'loss': 'nan', 'hist': None, 'inf': '-inf'}


def test_read_metrics_returns_scalar_records_in_order_and_appends_on_resume(tmp_path):
  assert writers.read_metrics(str(tmp_path)) == []   # no file yet
  w = writers.JsonlWriter(str(tmp_path))
  for step in (1, 2):
    w.write_scalars(step, {'loss': 1.0 / step})
  w.write_hparams({'seed': 0})
  w.close()
  w = writers.JsonlWriter(str(tmp_path))    # a resumed run appends
  w.write_scalars(3, {'loss': 1.0 / 3})
  w.close()
  records = writers.read_metrics(str(tmp_path))
  assert [r['step'] for r in records] == [1, 2, 3]      # hparams lines are skipped
  assert all(math.isclose(r['loss'], 1.0 / r['step']) for r in records)


def test_read_metrics_skips_a_half_written_last_record_only(tmp_path):
  w = writers.JsonlWriter(str(tmp_path))
  w.write_scalars(1, {'loss': 1.0})
  w.close()
  path = tmp_path / writers.METRICS_FILE
  with open(path, 'a', encoding='utf-8') as f:
    f.write('{"step": 2, "lo')   # the process was killed mid-write
  assert writers.read_metrics(str(tmp_path)) == [{'step': 1, 'loss': 1.0}]
  path.write_text('{"step": 1}\n{broken\n{"step": 3}\n')
  with pytest.raises(ValueError, match='line 2 is not a JSON record'):
    writers.read_metrics(str(tmp_path))


def test_only_process_zero_writes_files(tmp_path):
  other = tmp_path / 'p1'
  w = writers.make_writer(str(other), process_index=1)
  w.write_scalars(1, {'loss': 1.0})
  w.close()
  assert not other.exists() or not os.listdir(other)
  w = writers.make_writer(str(tmp_path / 'p0'), process_index=0)
  w.write_scalars(1, {'loss': 2.0})
  w.flush()
  assert writers.read_metrics(str(tmp_path / 'p0')) == [{'step': 1, 'loss': 2.0}]
  w.close()
  # TensorBoard event file beside the JSONL.
  assert any(n.startswith('events.out.tfevents') for n in os.listdir(tmp_path / 'p0'))


def _read_events(path):
  """The Event protos of a TFRecord file, parsed here (no TensorFlow, no TensorBoard
  reader): uint64 length, uint32 crc, data, uint32 crc per record."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
  data, events, pos = open(path, 'rb').read(), [], 0
  while pos < len(data):
    (length,) = struct.unpack('<Q', data[pos:pos + 8])
    events.append(event_pb2.Event.FromString(data[pos + 12:pos + 12 + length]))
    pos += 12 + length + 4
  return events


def test_tensorboard_events_hold_the_scalars_and_hparams_without_tensorflow(tmp_path):
  import subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
  # In a fresh interpreter: writing the default writer's records imports no TensorFlow.
  code = ('import sys; from jaxvision import writers; '
          f'w = writers.make_writer({str(tmp_path)!r}, 0); '
          'w.write_hparams({"lr": 0.1, "model": "ViT", "shape": (2, 3)}); '
          'w.write_scalars(5, {"loss": 0.5, "nan": float("nan"), "vec": [1, 2]}); '
          'w.write_scalars(6, {"loss": 0.25}); w.flush(); w.close(); '
          'print("tensorflow" in sys.modules)')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       check=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
  assert out.stdout.strip() == 'False', out.stderr
  assert 'I0000' not in out.stderr and 'oneDNN' not in out.stderr
  files = [n for n in os.listdir(tmp_path) if n.startswith('events.out.tfevents')]
  assert len(files) == 1
  events = [e for e in _read_events(os.path.join(tmp_path, files[0])) if e.HasField('summary')]
  scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value
             if v.HasField('simple_value')]
  assert scalars[0] == (5, 'loss', 0.5) and scalars[-1] == (6, 'loss', 0.25)
  assert math.isnan(dict(((s, t), x) for s, t, x in scalars)[(5, 'nan')])
  assert 'vec' not in {t for _, t, _ in scalars}
  hparams = [v for e in events for v in e.summary.value if v.tag == '_hparams_/session_start_info']
  assert len(hparams) == 1
  assert writers.read_metrics(str(tmp_path)) == [{'step': 5, 'loss': 0.5, 'nan': 'nan', 'vec': None},
                                                 {'step': 6, 'loss': 0.25}]
