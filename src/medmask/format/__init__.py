"""Bytes-only file-format code: constants, struct layouts, pack/unpack with checks.

Nothing here knows about numpy arrays or masks; see docs/mask-format.md.
"""
