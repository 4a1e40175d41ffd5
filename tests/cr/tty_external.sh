#!/bin/bash
# A tree whose controlling terminal and stdio are a pty held outside it (as
# a user's terminal, or a launcher's pty): a session leader (sh, printing a
# counter) with the slave as its ctty, the test holding the master and a
# slave descriptor.
#  - dump without --external tty is refused with one line naming the task,
#    the fd and the pty, and the tree keeps running;
#  - dump --external tty succeeds; restore without --inherit-fd N:tty is
#    refused and leaves no process; restore --inherit-fd N:tty plugs the
#    same pty back: it is again the session's controlling terminal (stat
#    tty_nr), the descriptors are that pty, and the output read on the
#    master goes on with no line lost or repeated.
# And the other way round: a tree holding a pty's master while a process
# outside it holds its slave is refused, naming that process and the pty;
# the output its master had not read (taken during the dump) is given back.
# Dumped, that tree is not restored while its pty index is taken (the
# refusal names it, nothing is left), and is once the index is free.
# Environment as for run.sh: CRTOOL, CR_TESTDIR (subreaper), CR_TMPDIR.
set -u
export CRTOOL

# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"
command -v python3 >/dev/null || { echo "SKIP tty_external: python3 is missing"; exit 77; }

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-tty_external.XXXXXX")
python3 - "$scratch" <<'EOF'
import fcntl, os, signal, struct, subprocess, sys, termios, threading, time

crtool, scratch = os.environ["CRTOOL"], sys.argv[1]
failed = []
def fail(msg):
    print("FAIL: " + msg)
    failed.append(msg)

# The pty: we hold the master (reading everything) and one slave descriptor.
m, s = os.openpty()
name = os.ttyname(s)
st = os.fstat(s)
tty_nr = (os.minor(st.st_rdev) & 0xff) | (os.major(st.st_rdev) << 8) | ((os.minor(st.st_rdev) & ~0xff) << 12)
out = bytearray()
def reader():
    while True:
        try:
            b = os.read(m, 4096)
        except OSError:
            return
        if not b:
            return
        out.extend(b)
threading.Thread(target=reader, daemon=True).start()

victim = subprocess.Popen(
    ["sh", "-c", 'i=0; while :; do echo "$i"; i=$((i + 1)); sleep 0.02; done'],
    stdin=s, stdout=s, stderr=s, start_new_session=True,
    preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
pid = victim.pid
time.sleep(0.5)

def run(args, **kw):
    return subprocess.run([crtool] + args, capture_output=True, text=True, **kw)

def alive(p):
    try:
        with open("/proc/%d/stat" % p) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False

def stat_tty_nr(p):
    with open("/proc/%d/stat" % p) as f:
        return int(f.read().rsplit(") ", 1)[1].split()[4])

def check_index_taken(holder, hname):
    """Dump the holder; with its pty index taken the restore is refused, naming
    it, and leaves nothing; with the index free again it is restored."""
    r = subprocess.run([crtool, "dump", "-t", str(holder.pid), "-D", scratch + "/h1"],
                       capture_output=True, text=True)
    if r.returncode:
        fail("dump of the pty holder failed: " + r.stderr)
        return
    holder.wait()
    idx, taken = int(hname.rsplit("/", 1)[1]), []
    while True:
        taken.append(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))
        n = struct.unpack("I", fcntl.ioctl(taken[-1], 0x80045430, b"\0" * 4))[0]  # TIOCGPTN
        if n >= idx:
            break
    for fd in taken[:-1]:
        os.close(fd)
    if n != idx:
        print("note: /dev/pts/%d was taken by someone else; the taken-index restore is not checked" % idx)
    else:
        r = subprocess.run([crtool, "restore", "-D", scratch + "/h1", "--detach"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            fail("restore succeeded although /dev/pts/%d was taken" % idx)
            os.kill(holder.pid, signal.SIGKILL)
        elif "/dev/pts/%d is taken" % idx not in r.stderr:
            fail("the refused restore does not name /dev/pts/%d: %s" % (idx, r.stderr))
        time.sleep(0.1)
        if alive(holder.pid):
            fail("a process %d was left by the refused restore" % holder.pid)
    os.close(taken[-1])
    r = subprocess.run([crtool, "restore", "-D", scratch + "/h1", "--detach"],
                       capture_output=True, text=True)
    if r.returncode:
        fail("restore of the pty holder failed once its index was free: " + r.stderr)
    else:
        os.kill(holder.pid, signal.SIGKILL)

# A pty of the tree with its slave held outside it: refused, tree left running.
holder_py = '''
import os, select, sys, time
d = sys.argv[1]
m, s = os.openpty()
os.write(s, b"unread\\n")
open(d + "/holder.tmp", "w").write(os.ttyname(s))
os.rename(d + "/holder.tmp", d + "/holder")
while not os.path.exists(d + "/go"):
    time.sleep(0.01)
got = b""
while select.select([m], [], [], 2)[0] and len(got) < 64:
    got += os.read(m, 64)
open(d + "/got.tmp", "wb").write(got)
os.rename(d + "/got.tmp", d + "/got")
time.sleep(60)
'''
holder = subprocess.Popen(["python3", "-c", holder_py, scratch], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
try:
    for i in range(1000):
        if os.path.exists(scratch + "/holder"):
            break
        time.sleep(0.01)
    hname = open(scratch + "/holder").read()
    outside_fd = os.open(hname, os.O_RDWR | os.O_NOCTTY)
    r = subprocess.run([crtool, "dump", "-t", str(holder.pid), "-D", scratch + "/h0"],
                       capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    if r.returncode == 0:
        fail("dump of a tree whose pty slave is held outside it succeeded")
    elif len(err) != 1 or ("pid %d" % os.getpid()) not in err[0] or hname not in err[0]:
        fail("expected one error line naming pid %d and %s: %r" % (os.getpid(), hname, err))
    if holder.poll() is not None:
        fail("the tree stopped after a refused dump")
    os.close(outside_fd)
    open(scratch + "/go", "w").close()
    for i in range(500):
        if os.path.exists(scratch + "/got"):
            break
        time.sleep(0.01)
    got = open(scratch + "/got", "rb").read() if os.path.exists(scratch + "/got") else None
    if got != b"unread\r\n":
        fail("after the refused dump the master read %r, not the output it had left unread" % got)
    check_index_taken(holder, hname)
finally:
    holder.kill()
    holder.wait()

restored = None
try:
    # 1. Undeclared: refused with one line naming the task, the fd and the pty.
    r = run(["dump", "-t", str(pid), "-D", scratch + "/d0"])
    err = r.stderr.strip().splitlines()
    if r.returncode == 0:
        fail("dump of a tree on an outside terminal succeeded without --external tty")
    elif len(err) != 1 or "--external tty" not in err[0] or ("pid %d" % pid) not in err[0] \
            or name not in err[0] or "fd " not in err[0]:
        fail("expected one error line naming pid %d, an fd, %s and --external tty: %r" % (pid, name, err))
    n0 = len(out)
    time.sleep(0.3)
    if not alive(pid) or len(out) <= n0:
        fail("the tree stopped after a refused dump")

    # 2. Declared: dumped and killed.
    r = run(["dump", "-t", str(pid), "-D", scratch + "/d1", "--external", "tty"])
    if r.returncode:
        fail("dump --external tty failed: " + r.stderr)
    victim.wait()
    time.sleep(0.2)
    n1 = out.count(b"\n")

    # 3. Restore without the terminal: refused, nothing left.
    r = run(["restore", "-D", scratch + "/d1", "--detach"])
    if r.returncode == 0:
        fail("restore without --inherit-fd N:tty succeeded")
    elif "--inherit-fd N:tty" not in r.stderr:
        fail("no hint for --inherit-fd N:tty: " + r.stderr)
    time.sleep(0.1)
    if alive(pid):
        fail("a process %d was left by the refused restore" % pid)

    # 4. Restore with the pty: it is the session's terminal again, output goes on.
    r = run(["restore", "-D", scratch + "/d1", "--detach", "--pidfile", scratch + "/pid",
             "--inherit-fd", "%d:tty" % s], pass_fds=(s,))
    if r.returncode:
        fail("restore --inherit-fd %d:tty failed: %s" % (s, r.stderr))
    else:
        restored = int(open(scratch + "/pid").read())
        time.sleep(0.5)
        if restored != pid:
            fail("restored root is %d, not %d" % (restored, pid))
        if stat_tty_nr(restored) != tty_nr:
            fail("restored session leader's tty_nr is %#x, expected %#x (%s)"
                 % (stat_tty_nr(restored), tty_nr, name))
        for fd in range(3):
            link = os.readlink("/proc/%d/fd/%d" % (restored, fd))
            if link != name:
                fail("restored fd %d is %s, not %s" % (fd, link, name))
        n2 = out.count(b"\n")
        if n2 <= n1:
            fail("no output after restore (%d lines before, %d after)" % (n1, n2))
finally:
    for p in (restored, pid):
        if p:
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass
time.sleep(0.2)
lines = out.decode(errors="replace").split("\r\n")[:-1]
for i, l in enumerate(lines):
    if l != str(i):
        fail("line %d of the output is %r" % (i, l))
        break
if failed:
    print("scratch kept: " + scratch)
    sys.exit(1)
print("PASS tty_external (%d lines)" % len(lines))
subprocess.run(["rm", "-rf", scratch])
EOF
