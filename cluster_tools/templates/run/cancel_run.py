"""Cancel every queued task of one clustertools run, on its head node, in one round trip (issue 16).

`clustertools cancel RUN` sends this file on stdin: ``python3 - RUN_DIR JOB_NAME STAMP``. It works for a run
submitted by any version (nothing of it is kept in the run's directory), with the head node's own python3 (3.7 on
Amazon Linux 2: the standard library only, nothing newer than 3.6 allows).

It lists the run's queued tasks (squeue without -r: an array's pending tasks are one line), cancels them all with
one scancel, and writes one file of CANCELLED records, one per subject that was still pending: a subject cancelled
while pending has no wrapper to write its record (a running one's wrapper writes its own as it is killed).
status.sh folds that file as it folds a task's own record. It prints the subjects it cancelled, one per line, each group
after a line ``@PENDING`` or ``@RUNNING`` (no subject ID holds an @). A task whose subject already has a final record of that attempt (a task Slurm requeued after it
ended) is cancelled but gets no record, and is not listed: its outcome stands, as the status merge would say.
Nothing is cancelled when squeue does not answer (exit 3); exit 44: no such run directory; exit 75: a submit of
the run is still running. The client (services/runs/run_cancel.py) and tests/unit/test_run_cancel.py hold its rules
equal to the package's own (slurm/queue.py, runs.py).
"""

import fcntl
import json
import os
import re
import subprocess
import sys
import time
import uuid

# slurm/queue.py's _RUNNING and runs.py's FINAL_STATES: the test holds them equal.
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"}
ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "CANCELLED",
         "PREEMPTED", "REVOKED"}
FINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "OOM", "NODE_FAIL", "CANCELLED"}
SQUEUE_FORMAT = "%F|%K|%T|%k"
LINE = re.compile(r"^(\d+)\|([0-9][0-9,:%-]*)\|([A-Z_]+)\|ct:([^:|]+):a(\d+):c(\d+)$")
RANGE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?\Z")
MAX_TASK_ID = 4000000
# The first three fields of a final record, as the wrapper and this script write them (with or without blanks): its
# subject, attempt and state. Not anchored to a line's start, which would cost re its fast search: inside a JSON
# string a quote is escaped, so `{"subject":"` only ever begins a record.
RECORD = rb'\{"subject": ?"([^"\\]*)", ?"attempt": ?(%s), ?"state": ?"(%s)"'
FINAL_STATES = "|".join(sorted(FINAL)).encode()


def final_records_of(attempt):
    """RECORD for the final records of one attempt, capturing their subject alone (findall then makes no tuples)."""
    return re.compile(RECORD.replace(b"(%s)", b"(?:%s)") % (str(int(attempt)).encode(), FINAL_STATES))
SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # names.py's SUBJECT_ID: the test holds them equal
SUBJECTS = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}\n)*\Z")


def task_ids(text):
    """squeue's %K: `4-999%16`, `1,3,5-9`, `0-98:2`; [] for anything else (slurm/queue.py's task_ids)."""
    ids = []
    for part in text.partition("%")[0].split(","):
        match = RANGE.match(part)
        if not match:
            return []
        first, last, step = int(match.group(1)), int(match.group(2) or match.group(1)), int(match.group(3) or 1)
        if last > MAX_TASK_ID or last < first or step < 1:
            return []
        ids.extend(range(first, last + 1, step))
    return ids


def queued_lines(text, run_id):
    """squeue's lines -> [(attempt, chunk, 'PENDING' or 'RUNNING', task ids)] of this run's tasks still queued."""
    lines = []
    for line in text.splitlines():
        match = LINE.match(line)
        if not match or match.group(4) != run_id or match.group(3) in ENDED:
            continue
        state = "RUNNING" if match.group(3) in RUNNING else "PENDING"
        lines.append((int(match.group(5)), int(match.group(6)), state, task_ids(match.group(2))))
    return lines


def attempt_subjects(attempt):
    """attempts/N/chunks (``CHUNK OFFSET COUNT``) and attempts/N/manifest (a header, then one line per task,
    the subject first): chunk -> offset, and the attempt's subjects in task order ("" for one that is not a
    subject ID: a file anyone on the head node could have touched)."""
    offsets = {}
    with open("attempts/%d/chunks" % attempt) as chunks:
        for line in chunks:
            words = line.split()
            if len(words) == 3 and all(w.isdigit() for w in words):
                offsets[int(words[0])] = int(words[1])
    with open("attempts/%d/manifest" % attempt, encoding="utf-8", errors="replace") as manifest:
        subjects = [line.split("\x1f", 1)[0].rstrip("\n") for line in manifest][1:]
    if not SUBJECTS.match("\n".join(subjects) + "\n"):  # one check of them all; else one by one
        subjects = [s if SUBJECT.match(s) else "" for s in subjects]
    return offsets, subjects


def ended_subjects(attempts):
    """attempt -> the subjects with a final record of it on the head node (folded, being folded, or new), for each of
    ``attempts``. A 100,000-task run has tens of megabytes of records: their subjects are decoded all at once, split on
    the quote no subject holds."""
    patterns = {attempt: final_records_of(attempt) for attempt in attempts}
    ended = {attempt: set() for attempt in attempts}
    names = ["records/all.jsonl"]
    for folder in ("records/batch", "records/new"):
        try:
            names += [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".json")]
        except OSError:
            pass
    for name in names:
        try:
            with open(name, "rb") as handle:
                text = handle.read()
        except OSError:
            continue
        for attempt, pattern in patterns.items():
            subjects = pattern.findall(text)
            if subjects:
                ended[attempt].update(b'"'.join(subjects).decode("utf-8", "replace").split('"'))
    return ended


def records_text(subjects, attempt, stamp):
    """The CANCELLED records services/runs/run_cancel.py's cancel_records writes (the test holds them equal), one join
    for all. A subject ID needs no escaping in JSON: it is only letters, digits and ``._-``."""
    if not subjects:
        return ""
    tail = ('","attempt":%d,"state":"CANCELLED","exit_code":null,"error":"cancelled while pending","start":"",'
            '"end":%s,"node":"","job_id":""}\n' % (int(attempt), json.dumps(stamp)))
    return '{"subject":"' + (tail + '{"subject":"').join(subjects) + tail


def cancelled_subjects(lines, ended):
    """[(state, attempt, subjects)] of the queued tasks' lines: what the manifests name, less the subjects whose
    attempt already ended (``ended``: attempt -> subjects)."""
    known, found = {}, []
    for attempt, chunk, state, ids in lines:
        if attempt not in known:
            try:
                known[attempt] = attempt_subjects(attempt)
            except OSError:
                known[attempt] = ({}, [])
        offsets, subjects = known[attempt]
        offset = offsets.get(chunk)
        if offset is None or not ids:
            continue
        if ids == list(range(ids[0], ids[-1] + 1)):  # an array's pending range, as squeue prints it: one slice
            named = subjects[offset + ids[0]:offset + ids[-1] + 1]
        else:
            named = [subjects[offset + i] for i in ids if offset + i < len(subjects)]
        done = ended.get(attempt)
        found.append((state, attempt, [s for s in named if s and s not in done] if done else list(filter(None, named))))
    return found


def records_aside(texts):
    """The records, written aside in records/new (a name status.sh does not fold): its path."""
    tmp = os.path.join("records", "new", ".cancelled-%s.tmp" % uuid.uuid4().hex)
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("".join(texts))
    except OSError:
        remove(tmp)
        raise
    return tmp


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


LOCK_WAIT_S = 60


def locked(handle, seconds):
    """The lock of ``handle`` within ``seconds`` (held until this process exits), else False."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def main(run_dir, job_name, stamp):
    try:
        os.chdir(run_dir)
    except OSError:
        return 44
    run_id = job_name[3:] if job_name.startswith("ct-") else job_name
    if not locked(open("submit.lock", "a"), LOCK_WAIT_S):  # held by submit.sh while it submits an attempt
        sys.stderr.write("a submit of this run is still running: nothing was cancelled\n")
        return 75
    try:
        queue = subprocess.run(["squeue", "-h", "--name=" + job_name, "-o", SQUEUE_FORMAT], stdout=subprocess.PIPE,
                               universal_newlines=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write("squeue did not answer (%s): nothing was cancelled\n" % exc)
        return 3
    lines = queued_lines(queue, run_id)
    if not any(ids for _, _, _, ids in lines):
        return 0
    # scancel works in slurmctld while the records are made here; they count only once it said yes.
    scancel = subprocess.Popen(["scancel", "--name=" + job_name])
    found = cancelled_subjects(lines, ended_subjects({line[0] for line in lines}))
    pending = [records_text(subjects, attempt, stamp) for state, attempt, subjects in found if state == "PENDING"]
    aside, unwritten = None, None
    try:
        aside = records_aside(pending) if any(pending) else None
    except OSError as exc:
        unwritten = exc
    try:
        code = scancel.wait(timeout=60)
    except subprocess.TimeoutExpired:
        scancel.kill()
        code = 124
    if code != 0:
        if aside:
            remove(aside)
        return 4
    try:
        if aside:  # whole, under the name status.sh folds
            os.rename(aside, os.path.join("records", "new", os.path.basename(aside)[1:-4] + ".json"))
    except OSError as exc:
        unwritten = exc
    if unwritten is not None:
        sys.stderr.write("the tasks were cancelled, but their CANCELLED records could not be written: %s\n" % unwritten)
        return 5
    sys.stdout.write("".join("@%s\n%s\n" % (state, "\n".join(subjects)) for state, _, subjects in found if subjects))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
