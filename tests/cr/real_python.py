"""The Python 3 program of tests/cr/real_python (see real_python.c).

    python3 real_python.py WORKDIR ROUNDS GATE_ROUND

Four threads work in rounds. In round r, thread t hashes its own previous
result with its neighbour's, runs a Decimal square root, a seeded
random.Random and zlib over it, and writes a line to its own file (open for
the whole run). Then, in thread order (a Condition holds the turn), it
appends a line to one shared file, under a multiprocessing.Lock too (a POSIX
semaphore in a deleted /dev/shm file), and publishes its result; the last
one of a round starts the next. The results also go, in that order, to a
tempfile.TemporaryFile (O_TMPFILE: a file that never had a name). Each thread counts the bytes it wrote to its
own file in a multiprocessing.Array (an arena in another deleted /dev/shm
file, mapped MAP_SHARED, with a lock of its own). Before round GATE_ROUND every thread waits for
WORKDIR/gate, which the C root creates after SIGTERM: the program is always
dumped mid-work. WORKDIR/started appears after round 2.

At the end it checks every file against the results it kept (through the
descriptors it held and by name) and writes WORKDIR/answer: the SHA-256 of
all results and file contents. Exit status 0 if every check passed.
"""
import decimal
import hashlib
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import zlib

NR_THREADS = 4


class Ring:
    def __init__(self, work, rounds, gate_round):
        self.work = work
        self.rounds = rounds
        self.gate_round = gate_round
        self.cond = threading.Condition()
        self.round = 0
        self.turn = 0
        self.results = [[None] * NR_THREADS for _ in range(rounds)]
        self.shared = open(os.path.join(work, "shared.log"), "w+", encoding="ascii")
        self.own = [open(os.path.join(work, "thread%d.log" % t), "w+", encoding="ascii")
                    for t in range(NR_THREADS)]
        self.errors = []
        self.mp_lock = multiprocessing.Lock()
        self.unnamed = tempfile.TemporaryFile(dir=work)
        self.written = multiprocessing.Array("Q", NR_THREADS)

    def wait_gate(self):
        gate = os.path.join(self.work, "gate")
        while not os.path.exists(gate):
            time.sleep(0.01)

    def compute(self, t, r, rng):
        mine = self.results[r - 1][t] if r else b"seed%d" % t
        other = self.results[r - 1][(t + 1) % NR_THREADS] if r else b"none"
        h = hashlib.sha256(mine + other + r.to_bytes(4, "little"))
        for _ in range(200):
            h = hashlib.sha256(h.digest())
        with decimal.localcontext() as ctx:
            ctx.prec = 60
            root = decimal.Decimal(int.from_bytes(h.digest()[:8], "little") + 1).sqrt()
        noise = bytes(rng.getrandbits(8) for _ in range(64))
        packed = zlib.compress(h.digest() * 8 + noise + str(root).encode(), 6)
        return hashlib.sha256(packed + h.digest()).digest(), str(root)[:24]

    def worker(self, t):
        rng = random.Random(1000 + t)
        own = self.own[t]
        for r in range(self.rounds):
            if r == self.gate_round:
                self.wait_gate()
            with self.cond:
                while self.round < r:
                    self.cond.wait()
            time.sleep(0.002)   # paced: the dumps fall among the rounds
            result, root = self.compute(t, r, rng)
            line = "round %d %s %s\n" % (r, result.hex(), root)
            own.write(line)
            own.flush()
            with self.written.get_lock():
                self.written[t] += len(line)
            with self.cond:
                while self.turn != t:
                    self.cond.wait()
                with self.mp_lock:
                    self.shared.write("%d %d %s\n" % (r, t, result.hex()[:16]))
                    self.shared.flush()
                self.unnamed.write(result)
                self.unnamed.flush()
                self.results[r][t] = result
                self.turn += 1
                if self.turn == NR_THREADS:
                    self.turn = 0
                    self.round += 1
                self.cond.notify_all()

    def fail(self, msg):
        print("[real_python.py %d] FAIL: %s" % (os.getpid(), msg), file=sys.stderr)
        self.errors.append(msg)

    def check_file(self, f, expected):
        """The file as held open and as named holds exactly EXPECTED."""
        data = expected.encode("ascii")
        if f.tell() != len(data):
            self.fail("%s: offset %d, wrote %d bytes" % (f.name, f.tell(), len(data)))
        held = os.pread(f.fileno(), len(data) + 1, 0)
        with open(f.name, "rb") as g:
            named = g.read()
        if held != data or named != data:
            self.fail("%s: contents differ from what was written" % f.name)
        return data

    def answer(self):
        total = hashlib.sha256()
        for r in range(self.rounds):
            for t in range(NR_THREADS):
                total.update(self.results[r][t])
        shared = "".join("%d %d %s\n" % (r, t, self.results[r][t].hex()[:16])
                         for r in range(self.rounds) for t in range(NR_THREADS))
        total.update(self.check_file(self.shared, shared))
        self.unnamed.seek(0)
        if self.unnamed.read() != b"".join(b"".join(row) for row in self.results):
            self.fail("the unnamed temporary file differs from the results")
        for t in range(NR_THREADS):
            lines = []
            rng = random.Random(1000 + t)
            for r in range(self.rounds):
                # Recomputed from the kept results: every line must match.
                result, root = self.compute(t, r, rng)
                if result != self.results[r][t]:
                    self.fail("thread %d round %d: result differs on recomputation" % (t, r))
                lines.append("round %d %s %s\n" % (r, result.hex(), root))
            data = self.check_file(self.own[t], "".join(lines))
            if self.written[t] != len(data):
                self.fail("thread %d: the shared Array counts %d bytes, the file has %d"
                          % (t, self.written[t], len(data)))
            total.update(data)
        return total.hexdigest()


def publish(path, text):
    with open(path + ".tmp", "w", encoding="ascii") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    work, rounds, gate_round = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ring = Ring(work, rounds, gate_round)
    threads = [threading.Thread(target=ring.worker, args=(t,), name="worker%d" % t)
               for t in range(NR_THREADS)]
    for th in threads:
        th.start()
    with ring.cond:
        while ring.round < min(2, rounds):
            ring.cond.wait()
    publish(os.path.join(work, "started"), "%d\n" % os.getpid())
    for th in threads:
        th.join()
    answer = ring.answer()
    if ring.errors:
        return 1
    publish(os.path.join(work, "answer"), answer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
