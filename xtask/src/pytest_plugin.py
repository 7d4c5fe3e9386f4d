"""The xtask's pytest plugin: what pytest itself knows, for the xtask's reports.

Written and loaded by the xtask (`-p _xtask_progress`, its directory last on PYTHONPATH).
It never changes a test's result, and ignores any error of its own. Every file it writes
is named by a variable the xtask sets:

- $XTASK_PROGRESS_FILE: when a test starts, its node id, file (relative to the rootdir)
  and 0-based line, at the start of the file; when it ends, an empty first line. One pwrite
  each, so 20,000 tests cost next to nothing; a timeout names the test that was running.
- $XTASK_RESULTS_FILE: `S <epoch seconds> <node id>` when a test starts (its real start,
  for the run record), `F <node id>` for a test that failed in any phase (`--retries`
  runs it again), `R <node id>` for every test that ran to its end. Buffered: one line
  more per test costs next to nothing.
- $XTASK_COLLECTED_FILE: the node ids pytest was to run, once collection and selection
  are done, so that a test that never ran (`-x`, `--maxfail`, a run cut short) is known.
- $XTASK_SESSION_FILE: pytest's rootdir (what its report's files are relative to), how
  many tests were deselected, and how many were selected before a partition took its
  slice: pytest's own values, whatever `-q` or `-p no:terminal` leave of its output.
- With $XTASK_PARTITION=K/N it deselects, at collection, the tests whose node id does
  not hash (crc32) to slice K.
- With $XTASK_RERUN_DESELECT (`--rerun`), a file of node ids relative to the directory
  pytest runs in (one a line), it deselects those tests, the ones that passed in the run
  being rerun: the failed tests and the tests added since then run.
"""

import os
import time

import pytest

_FD = None
try:
    _FD = os.open(os.environ["XTASK_PROGRESS_FILE"], os.O_WRONLY | os.O_CREAT, 0o600)
except Exception:
    pass

_RESULTS = None
try:
    _RESULTS = open(os.environ["XTASK_RESULTS_FILE"], "a", encoding="utf-8", errors="replace")
except Exception:
    pass


def pytest_runtest_logstart(nodeid, location):
    if _RESULTS is not None:
        try:
            _RESULTS.write(f"S {time.time():.6f} {nodeid}\n")
        except Exception:
            pass
    if _FD is None:
        return
    try:
        fspath, lineno, _ = location
        line = "" if lineno is None else str(lineno)
        os.pwrite(_FD, f"{nodeid}\n{fspath}\n{line}\n".encode("utf-8", "replace"), 0)
    except Exception:
        pass


def pytest_runtest_logreport(report):
    """Notes each failed test's node id (in any phase) for `--retries`."""
    if _RESULTS is None or not report.failed:
        return
    try:
        _RESULTS.write("F " + report.nodeid + "\n")
    except Exception:
        pass


def pytest_runtest_logfinish(nodeid, location):
    if _RESULTS is not None:
        try:
            _RESULTS.write("R " + nodeid + "\n")
        except Exception:
            pass
    if _FD is None:
        return
    try:
        os.pwrite(_FD, b"\n", 0)
    except Exception:
        pass


_ROOTDIR = ""
_DESELECTED = 0
_SELECTED = ""


def _write_session():
    """$XTASK_SESSION_FILE: the rootdir, the deselected count, the count before a partition."""
    try:
        with open(os.environ["XTASK_SESSION_FILE"], "w", encoding="utf-8", errors="replace") as f:
            f.write(f"{_ROOTDIR}\n{_DESELECTED}\n{_SELECTED}\n")
    except Exception:
        pass


def pytest_configure(config):
    global _ROOTDIR
    try:
        _ROOTDIR = str(config.rootpath)
    except Exception:
        return
    _write_session()


def pytest_deselected(items):
    global _DESELECTED
    try:
        _DESELECTED += len(items)
    except Exception:
        return
    _write_session()


def _rerun_deselect(config, items):
    """$XTASK_RERUN_DESELECT: deselects the tests it names (relative to the working
    directory; pytest's node ids are relative to its rootdir)."""
    path = os.environ.get("XTASK_RERUN_DESELECT")
    if not path:
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        done = set(line.rstrip("\n") for line in f)
    root = str(config.rootpath)
    cwd = os.getcwd()
    moved = {}

    def from_cwd(nodeid):
        file, sep, rest = nodeid.partition("::")
        if file not in moved:
            moved[file] = os.path.relpath(os.path.join(root, file), cwd).replace(os.sep, "/")
        return moved[file] + sep + rest

    keep, drop = [], []
    for item in items:
        (drop if from_cwd(item.nodeid) in done else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_FILE_SLOTS = None


def _file_slots(config, count):
    """With $XTASK_SPLIT_FILES (the slices of a suite split across processes): the test
    files under pytest's directory arguments (matching `python_files`, outside
    `norecursedirs`), each given one of `count` slots, largest first to the slot with the
    fewest bytes so far (ties by path): the same in every slice, so each file is collected
    and run by one slice only. A file given by name is not in it (its tests go by node id)."""
    global _FILE_SLOTS
    if _FILE_SLOTS is not None:
        return _FILE_SLOTS
    import fnmatch

    patterns = config.getini("python_files") or ["test_*.py", "*_test.py"]
    skip = config.getini("norecursedirs") or []
    base = str(config.invocation_params.dir)
    files = set()
    for arg in config.args:
        top = os.path.abspath(os.path.join(base, str(arg).split("::", 1)[0]))
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in skip)]
            for name in filenames:
                if any(fnmatch.fnmatch(name, p) for p in patterns):
                    files.add(os.path.join(dirpath, name))
    sized = sorted((-os.path.getsize(f), f) for f in files)
    loads = [0] * count
    slots = {}
    for minus_size, path in sized:
        slot = min(range(count), key=lambda s: (loads[s], s))
        loads[slot] -= minus_size
        slots[path] = slot
    _FILE_SLOTS = slots
    return slots


def _split_by_files():
    """(K, N) when this is slice K of N of a split suite, else None."""
    spec = os.environ.get("XTASK_PARTITION")
    if not spec or not os.environ.get("XTASK_SPLIT_FILES"):
        return None
    index, count = (int(part) for part in spec.split("/"))
    return index, count


def pytest_ignore_collect(collection_path, config):
    """A slice of a split suite does not even collect the other slices' files."""
    try:
        split = _split_by_files()
        if split is None:
            return None
        slot = _file_slots(config, split[1]).get(os.path.abspath(str(collection_path)))
        if slot is not None and slot != split[0] - 1:
            return True
    except Exception:
        pass
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """After every other selection (`-m`, `-k`): with $XTASK_RERUN_DESELECT, deselects the
    tests that passed in the run being rerun; notes how many tests are selected, then,
    with $XTASK_PARTITION=K/N, keeps the tests whose node id hashes to slice K of N (crc32:
    the same on every machine and every run) and deselects the others; with
    $XTASK_SPLIT_FILES too, a test in a file of `_file_slots` goes by its file's slot."""
    global _SELECTED
    try:
        _rerun_deselect(config, items)
    except Exception:
        pass
    spec = os.environ.get("XTASK_PARTITION")
    if not spec:
        return
    import zlib

    try:
        _SELECTED = str(len(items))
        _write_session()
    except Exception:
        pass
    index, count = (int(part) for part in spec.split("/"))
    slots = {}
    try:
        if _split_by_files() is not None:
            slots = _file_slots(config, count)
    except Exception:
        slots = {}
    keep, drop = [], []
    for item in items:
        slot = slots.get(os.path.abspath(str(getattr(item, "path", ""))))
        if slot is None:
            slot = zlib.crc32(item.nodeid.encode("utf-8")) % count
        (keep if slot == index - 1 else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session):
    path = os.environ.get("XTASK_COLLECTED_FILE")
    if not path:
        return
    try:
        if session.config.option.collectonly:
            return
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.writelines(item.nodeid + "\n" for item in session.items)
    except Exception:
        pass


def _flush():
    if _RESULTS is None:
        return
    try:
        _RESULTS.flush()
    except Exception:
        pass


def pytest_sessionfinish(session, exitstatus):
    _flush()


def pytest_unconfigure(config):
    _flush()
