"""Diffusion models shared by the methods: schedules, closed-form steps, sampling loops.

- `gaussian`: noise schedules, q_sample / posterior, ancestral and DDIM steps,
  respacing, the masked x_0 MSE;
- `sampling`: classifier-free guidance and the reverse-process loop (one `lax.scan`).
"""
