"""``dcm-extract keygen FILE``: a new secret key for keyed pseudonyms."""

from __future__ import annotations

import argparse

from ..privacy.pseudonyms import generate_key
from .common import echo

HELP = "Write a new secret key for keyed pseudonyms; keep it outside the outputs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="where to write the new key (mode 0600)")


def run(args: argparse.Namespace) -> int:
    fingerprint = generate_key(args.path)
    echo(f"new pseudonym key in {args.path} (fingerprint {fingerprint})")
    echo("back it up and keep it private: the same key gives the same pseudonyms")
    return 0
