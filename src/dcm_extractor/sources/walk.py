"""The files of a case folder: regular files only, every other entry reported with why.

Opening anything but a regular file can hang (a named pipe blocks until a writer comes)
or read a device; so only regular files are returned, and FIFOs, sockets and devices
come back as :class:`WalkProblem` entries for the report. Symlinks are followed, folders
at most once (a link back up the tree is a loop, reported: a link to the case folder or
to any folder above it, such as the data root, whose other cases it would bring in), and
links to nothing are reported too. Files reached through a symlink come after every real
file, so that when a link and its target are both in the case, the real file is the one
counted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .names import sort_key

__all__ = ["WalkProblem", "walk_case_files"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True)
class WalkProblem:
    """An entry under a case that is not read: ``reason`` code and a names-free ``detail``."""

    path: Path
    reason: str
    detail: str


def walk_case_files(folder: Path) -> Iterator[Path | WalkProblem]:
    """Regular files under ``folder`` (sorted, real files first), and problems met on the way."""
    linked: list[Path] = []
    try:
        top = folder.stat()
    except OSError as err:
        yield WalkProblem(folder, "unreadable_folder", f"cannot be opened ({_name(err)})")
        return
    # the folders above the case too: a link to one of them (the data root, /) would bring
    # the other cases' files into this one - a link back up the tree, reported as a loop
    visited = {(top.st_dev, top.st_ino), *_above(folder)}
    yield from _visit(folder, visited, linked, top.st_dev, via_link=False)
    yield from linked


def _by_name(entry: os.DirEntry[str]) -> str:
    """A name's sort key (:func:`.names.sort_key`): the order, and so which image is a
    series' first, is the same in any locale."""
    return sort_key(entry.name)


def _visit(
    folder: Path,
    visited: set[tuple[int, int]],
    linked: list[Path],
    device: int,
    *,
    via_link: bool,
) -> Iterator[Path | WalkProblem]:
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=_by_name)
    except OSError as err:
        yield WalkProblem(folder, "unreadable_folder", f"cannot be listed ({_name(err)})")
        return
    for entry in entries:
        path = Path(entry.path)
        is_link = entry.is_symlink()
        if not is_link:  # the directory entry's type says enough: no stat per file
            if entry.is_file(follow_symlinks=False):
                if via_link:
                    linked.append(path)
                else:
                    yield path
                continue
            if entry.is_dir(follow_symlinks=False):
                # a real folder cannot close a loop, but a link may point back to it:
                # its inode (free from the directory entry) on the walk's device
                visited.add((device, entry.inode()))
                yield from _visit(path, visited, linked, device, via_link=via_link)
                continue
        yield from _examine(path, is_link, visited, linked, via_link=via_link)


def _examine(
    path: Path,
    is_link: bool,
    visited: set[tuple[int, int]],
    linked: list[Path],
    *,
    via_link: bool,
) -> Iterator[Path | WalkProblem]:
    """A symlink, or an entry that is neither a regular file nor a folder: stat it."""
    try:
        info = path.stat()  # follows links
    except OSError as err:
        if err.errno == errno.ELOOP:
            yield WalkProblem(path, "symlink_loop", "a symbolic link that loops")
        elif is_link and isinstance(err, FileNotFoundError):
            yield WalkProblem(path, "dangling_link", "a symbolic link to nothing")
        else:
            yield WalkProblem(path, "unreadable", f"cannot be examined ({_name(err)})")
        return
    if stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in visited:
            detail = "a linked folder already scanned (a link back up the tree, or twice)"
            yield WalkProblem(path, "symlink_loop", detail)
            return
        visited.add(key)
        yield from _visit(path, visited, linked, info.st_dev, via_link=via_link or is_link)
    elif stat.S_ISREG(info.st_mode):
        if is_link or via_link:
            linked.append(path)
        else:
            yield path
    else:
        kind = next((text for test, text in _KINDS if test(info.st_mode)), "not a regular file")
        yield WalkProblem(path, "not_regular_file", f"{kind}: not opened")


def _above(folder: Path) -> set[tuple[int, int]]:
    """(device, inode) of every folder above ``folder``, as named and as resolved."""
    named = Path.cwd() / folder  # (as named: no links resolved)
    keys = set()
    for parent in {*named.parents, *named.resolve().parents}:
        try:
            info = parent.stat()
        except OSError:  # (a folder above that cannot be examined: nothing to compare)
            continue
        keys.add((info.st_dev, info.st_ino))
    return keys


def _name(err: OSError) -> str:
    return type(err).__name__
