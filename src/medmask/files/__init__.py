"""Files medmask owns: the archive (``.mska``), single-mask files (``.msk``), the read-only
reader of medmask 0.1.3 archives, and crash-safe (atomic) writes.

The byte layouts are in :mod:`medmask.format`; these modules open, lock, read and commit
the files, turning bytes into the model's objects and back.
"""
