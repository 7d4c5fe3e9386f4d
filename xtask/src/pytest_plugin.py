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
  not hash (crc32) to slice K. With $XTASK_PARTITION=durations:K/N, the tests that the
  durations in $XTASK_PARTITION_DURATIONS (a JSON object: node id relative to the
  directory pytest runs in -> seconds) do not deal to slice K (`_durations_slices`).
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


def _from_cwd(config):
    """A function giving a node id relative to the working directory (pytest's node ids are
    relative to its rootdir), the form the xtask's files name tests in."""
    root = str(config.rootpath)
    cwd = os.getcwd()
    moved = {}

    def from_cwd(nodeid):
        file, sep, rest = nodeid.partition("::")
        if file not in moved:
            moved[file] = os.path.relpath(os.path.join(root, file), cwd).replace(os.sep, "/")
        return moved[file] + sep + rest

    return from_cwd


def _rerun_deselect(config, items):
    """$XTASK_RERUN_DESELECT: deselects the tests it names (relative to the working
    directory)."""
    path = os.environ.get("XTASK_RERUN_DESELECT")
    if not path:
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        done = set(line.rstrip("\n") for line in f)
    from_cwd = _from_cwd(config)
    keep, drop = [], []
    for item in items:
        (drop if from_cwd(item.nodeid) in done else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# The least a test counts for when slices are dealt: JUnit's times are in milliseconds, so
# a near-instant test is recorded as 0, and tests that weigh nothing would all pile onto
# whichever slice is least loaded when their turn comes (a thousand of them, most of a
# second that no slice accounted for). pytest spends about this much on any test.
_MIN_MICROS = 500


def _weigher(durations):
    """What a test weighs when slices are dealt by `durations` ({node id: seconds}), in
    whole microseconds, by node id: its duration, the median of the known ones when it
    has none (1 s when none is known), never less than `_MIN_MICROS`."""
    known = sorted(durations.values())
    if known:
        mid = len(known) // 2
        median = known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2
    else:
        median = 1.0

    def micros(nodeid):
        return max(_MIN_MICROS, int(round(durations.get(nodeid, median) * 1e6)))

    return micros


def _durations_slices(nodeids, durations, count, group_of=None):
    """Deals the tests `nodeids` to `count` slices by `durations` ({node id: seconds}):
    longest first, each onto the slice with the least time so far (LPT; the lower slice
    on a tie), equal durations in node id order. A test without a duration counts as the
    median of the known ones (1 s when none is known), and none as less than
    `_MIN_MICROS`. `group_of` ({node id: key}) names tests dealt together, as one unit
    weighing their sum (the tests of a module with a module-scoped fixture: see
    `_group_key`); a test it does not name is a unit of its own. Times are whole
    microseconds, so the sums, and so the slices, are the same on every machine. Returns
    {node id: slice}, slices 0-based. The one place slices are computed: `--partition
    durations:K/N` and a split suite's slices all come from here."""
    import heapq

    micros = _weigher(durations)
    units = {}
    for nodeid in set(nodeids):
        key = (group_of or {}).get(nodeid)
        units.setdefault(("test", nodeid) if key is None else ("group", key), []).append(nodeid)
    dealt = sorted((-sum(micros(n) for n in tests), key) for key, tests in units.items())
    loads = [(0, slot) for slot in range(count)]
    slices = {}
    for negative, key in dealt:
        load, slot = heapq.heappop(loads)
        for nodeid in units[key]:
            slices[nodeid] = slot
        heapq.heappush(loads, (load - negative, slot))
    return slices


def _group_key(item, nodeid):
    """What `item` (node id `nodeid`, relative to the working directory) must be dealt
    with, or None: the tests using a package-scoped fixture go with their directory's,
    a module-scoped one with their file's, a class-scoped one with their class's, so a
    slice never sets such a fixture up again for a share of its tests. Measured: 8 files
    with a 0.3 s module fixture, dealt test by test to 4 slices, ran 2.2x the whole run's
    test time, two slices 3x the ideal."""
    try:
        scopes = set()
        for defs in item._fixtureinfo.name2fixturedefs.values():
            for fixturedef in defs:
                scopes.add(str(fixturedef.scope))
    except Exception:
        return None
    file = nodeid.partition("::")[0]
    if "package" in scopes:
        return "package " + os.path.dirname(file)
    if "module" in scopes:
        return "module " + file
    if "class" in scopes and getattr(item, "cls", None) is not None:
        return "class " + nodeid.rsplit("::", 1)[0]
    return None


def _durations_slice_of(config, items, count):
    """{item's node id: slice} over `items`, from $XTASK_PARTITION_DURATIONS. No error is
    ignored here: a slice computed from other durations than the other slices' would run
    tests twice or never."""
    import json

    path = os.environ["XTASK_PARTITION_DURATIONS"]
    with open(path, encoding="utf-8") as f:
        durations = json.load(f)
    from_cwd = _from_cwd(config)
    ids = {item.nodeid: from_cwd(item.nodeid) for item in items}
    group_of = {}
    for item in items:
        key = _group_key(item, ids[item.nodeid])
        if key is not None:
            group_of[ids[item.nodeid]] = key
    slices = _durations_slices(ids.values(), durations, count, group_of)
    return {nodeid: slices[moved] for nodeid, moved in ids.items()}


_FILE_SLOTS = None


def _file_slots(config, count):
    """With $XTASK_SPLIT_FILES (the slices of a suite split across processes): the test
    files under pytest's directory arguments (matching `python_files`, outside
    `norecursedirs`), each given one of `count` slots: the same in every slice, so each
    file is collected and run by one slice only. With $XTASK_PARTITION_DURATIONS, dealt
    by `_durations_slices`, each file one unit weighing its recorded tests' sum (a file
    with none recorded, one test of the median); else largest first to the slot with the
    fewest bytes so far (ties by path). A file given by name is not in it (its tests go by
    node id)."""
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
    if os.environ.get("XTASK_PARTITION_DURATIONS"):
        _FILE_SLOTS = _file_slots_by_durations(files, count)
        return _FILE_SLOTS
    sized = sorted((-os.path.getsize(f), f) for f in files)
    loads = [0] * count
    slots = {}
    for minus_size, path in sized:
        slot = min(range(count), key=lambda s: (loads[s], s))
        loads[slot] -= minus_size
        slots[path] = slot
    _FILE_SLOTS = slots
    return slots


# With the durations of a split suite, the recorded tests of its heavy files, each with
# its slot ({node id relative to the directory pytest runs in: slot}): see
# `_file_slots_by_durations`.
_TEST_SLOTS = {}


def _file_slots_by_durations(files, count):
    """{file (absolute path): slot} for the `files` of a split suite, dealt by the
    durations in $XTASK_PARTITION_DURATIONS (node ids relative to the directory pytest
    runs in), all in one `_durations_slices`: each file one unit weighing its recorded
    tests' sum (a file with none recorded, added since, one test of the median), except
    a heavy file, weighing more than a slice's share (the files' sum / `count`),
    whose recorded tests are dealt one by one (into `_TEST_SLOTS`): whole, it would make
    its slice the longest. A heavy file is collected by every slice, each keeping its
    tests; a test of it not recorded goes by the hash of its node id."""
    import json

    global _TEST_SLOTS
    with open(os.environ["XTASK_PARTITION_DURATIONS"], encoding="utf-8") as f:
        durations = json.load(f)
    micros = _weigher(durations)
    cwd = os.getcwd()
    by_name = {os.path.relpath(f, cwd).replace(os.sep, "/"): f for f in files}
    recorded = {}
    for nodeid in durations:
        name = nodeid.partition("::")[0]
        if name in by_name:
            recorded.setdefault(name, []).append(nodeid)
    for name in set(by_name) - set(recorded):
        recorded[name] = [name + "::"]
    weight = {name: sum(micros(n) for n in tests) for name, tests in recorded.items()}
    share = sum(weight.values()) / count
    group_of = {}
    alone = set()
    for name, tests in recorded.items():
        if weight[name] > share and tests != [name + "::"]:
            alone.update(tests)
        else:
            group_of.update((nodeid, name) for nodeid in tests)
    slices = _durations_slices(list(group_of) + sorted(alone), durations, count, group_of)
    _TEST_SLOTS = {nodeid: slices[nodeid] for nodeid in alone}
    return {by_name[group_of[nodeid]]: slot for nodeid, slot in slices.items() if nodeid in group_of}


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
    $XTASK_PARTITION=durations:K/N, keeps the tests `_durations_slices` deals to slice K,
    dealt over the tests selected before `--rerun` deselected any (the same set on every
    machine running the same command).
    With $XTASK_SPLIT_FILES too (the slices of a split suite, always K/N), a test in a
    file of `_file_slots` goes by its file's slot, a recorded test of a heavy file by
    `_TEST_SLOTS`."""
    global _SELECTED
    spec = os.environ.get("XTASK_PARTITION")
    before_rerun = list(items)
    try:
        _rerun_deselect(config, items)
    except Exception:
        pass
    if not spec:
        return
    import zlib

    try:
        _SELECTED = str(len(items))
        _write_session()
    except Exception:
        pass
    mode, _, slice_spec = spec.rpartition(":")
    index, count = (int(part) for part in slice_spec.split("/"))
    if mode == "durations":
        slice_of = _durations_slice_of(config, before_rerun, count)

        def in_slice(item):
            return slice_of[item.nodeid] == index - 1

    else:
        slots, tests = {}, {}
        try:
            if _split_by_files() is not None:
                slots = _file_slots(config, count)
                tests = _TEST_SLOTS
        except Exception:
            slots, tests = {}, {}
        from_cwd = _from_cwd(config)

        def in_slice(item):
            slot = slots.get(os.path.abspath(str(getattr(item, "path", ""))))
            if slot is None and tests:
                slot = tests.get(from_cwd(item.nodeid))
            if slot is None:
                slot = zlib.crc32(item.nodeid.encode("utf-8")) % count
            return slot == index - 1

    keep, drop = [], []
    for item in items:
        (keep if in_slice(item) else drop).append(item)
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
