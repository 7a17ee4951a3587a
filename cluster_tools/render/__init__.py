"""Pure rendering: specs (dataclasses) in, text out. No I/O besides reading packaged templates."""
