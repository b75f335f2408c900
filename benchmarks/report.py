"""What every benchmark records about the machine, and how it prints its JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform

import jax


def machine() -> dict:
  """Device, host, CPU count and load: CPU timings move with the load of shared cores."""
  dev = jax.devices()[0]
  return {'date': datetime.date.today().isoformat(),
          'device': f'{dev.platform}:{dev.device_kind}', 'num_devices': jax.device_count(),
          'host': platform.processor() or platform.machine(), 'cpus': os.cpu_count(),
          'load_average': [round(x, 2) for x in os.getloadavg()]}


def emit(result: dict, out: str | None) -> None:
  """Prints `result` as JSON, and writes it to `out` when given."""
  text = json.dumps(result, indent=2)
  print(text)
  if out:
    with open(out, 'w') as f:
      f.write(text + '\n')
