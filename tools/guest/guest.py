#!/usr/bin/python3
"""Boots vmemfs test guests under QEMU (TCG), snapshots them and extracts their ground truth.

Subcommands (see README.md for the file formats):
  boot       --dir DIR --cpu max|qemu64 [--mem 256] [--extra N] [--kernel-dir IMG]
             [--timeout 180] [--paused] [--reboot]
  wait-ready --dir DIR [--timeout 180] [--boot N]   wait for READY, write DIR/truth/
  cont       --dir DIR    QMP cont (start a --paused guest)
  reset      --dir DIR [--timeout 180]   QMP system_reset (needs --reboot), new truth
  snapshot   --dir DIR    pause; DIR/raw.mem + DIR/core.elf + DIR/truth/registers.txt; resume
  stop       --dir DIR    quit QEMU
  prepare    --root ROOT [--guests l5,l4,pae,legacy32]  images + running, snapshotted guests
             ROOT/l5, ROOT/l4 (x86-64) and ROOT/pae, ROOT/legacy32 (i386)
Python 3 standard library only.
"""
import argparse
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
READY = '==VMEMFS-READY=='
# First line of every boot on both serial ports (init.sh); truth.log keeps growing across resets.
BOOT_LINE = re.compile(r'==VMEMFS-BOOT ([0-9a-f-]+)==')
CR4_LA57 = 1 << 12
CR4_PAE = 1 << 5


class GuestError(Exception):
    pass


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


# --- QMP ------------------------------------------------------------------------------------------

class Qmp:
    """Minimal synchronous QMP client: one command at a time, events are collected."""

    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.file = None
        self.events = []
        try:
            self.sock.connect(path)
            self.file = self.sock.makefile('rwb')
            self._read()  # greeting
            self.cmd('qmp_capabilities')
        except BaseException:
            self.close()
            raise

    def _read(self):
        line = self.file.readline()
        if not line:
            raise GuestError('QMP connection closed')
        return json.loads(line)

    def cmd(self, name, **arguments):
        self.file.write(json.dumps({'execute': name, 'arguments': arguments}).encode() + b'\n')
        self.file.flush()
        while True:
            msg = self._read()
            if 'event' in msg:
                self.events.append(msg)
            elif 'error' in msg:
                raise GuestError(f'QMP {name}: {msg["error"].get("desc", msg["error"])}')
            elif 'return' in msg:
                return msg['return']

    def hmp(self, command_line):
        return self.cmd('human-monitor-command', **{'command-line': command_line})

    def wait_event(self, name, timeout):
        """Returns the first event `name` (collected earlier or arriving within timeout s)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event['event'] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            self.sock.settimeout(max(left, 0.01))
            try:  # a timed-out socket file cannot be read again: the connection is done then
                msg = self._read()
            except socket.timeout:
                raise GuestError(f'no QMP event {name} within {timeout} s') from None
            if 'event' in msg:
                self.events.append(msg)

    def close(self):
        # The socket's fd stays open while its makefile() object is: close both, or QEMU keeps
        # seeing a client and the monitor stays busy.
        try:
            if self.file is not None:
                self.file.close()
        except OSError:
            pass
        self.sock.close()


def connect_qmp(directory, timeout=120, order=('qmp.sock', 'qmp-test.sock')):
    """QMP on the first free one of DIR/qmp.sock and DIR/qmp-test.sock (in `order`). QEMU serves
    one client per monitor socket; a second client is accepted by the kernel but never greeted,
    so a monitor that vmemfs (or a test) holds shows up as a 5 s greeting timeout (or EAGAIN,
    once QEMU's listen backlog is full) and the other socket is tried."""
    errors = []
    for name in order:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        try:
            qmp = Qmp(path, timeout=5)
        except (OSError, GuestError) as e:  # socket.timeout is an OSError
            errors.append(f'{name}: {e or type(e).__name__}')
            continue
        qmp.sock.settimeout(timeout)
        return qmp
    raise GuestError(f'{directory}: no free QMP monitor ({"; ".join(errors) or "no sockets"})')


# --- helpers --------------------------------------------------------------------------------------

def pid_alive(directory):
    try:
        pid = int(open(os.path.join(directory, 'qemu.pid')).read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def tail(path, lines=30):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no output)'


def ensure_qemu():
    if shutil.which('qemu-system-x86_64') is None:
        subprocess.run(['apt-get', 'update', '-qq'], check=True)
        subprocess.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends',
                        'qemu-system-x86'], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))


def build_image(image_dir, flavour='cloud-amd64'):
    subprocess.run([os.path.join(HERE, 'build-guest.sh'), image_dir, flavour], check=True)


def image_flavour(image_dir):
    """The Debian kernel flavour build-guest.sh built into image_dir (cloud-amd64 for images
    from before it wrote the file)."""
    try:
        return open(os.path.join(image_dir, 'flavour')).read().strip()
    except OSError:
        return 'cloud-amd64'


def qemu_binary(image_dir):
    """qemu-system-i386 for the i386 kernels (686, 686-pae): a 32-bit machine, so the guest
    really runs on a CPU without long mode, as a 32-bit appliance would."""
    return 'qemu-system-i386' if image_flavour(image_dir).startswith('686') else \
        'qemu-system-x86_64'


def image_id(image_dir):
    """Kernel version + initramfs source hash: a running guest is reusable only if they match."""
    return ' '.join(open(os.path.join(image_dir, f)).read().strip()
                    for f in ('kernel-version', 'initramfs.stamp'))


def write_atomic(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w' if isinstance(data, str) else 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


# --- boot -----------------------------------------------------------------------------------------

def boot(directory, cpu, mem=256, extra=0, kernel_dir=None, timeout=180, paused=False,
         reboot=False):
    """Starts QEMU. Waits for READY and writes DIR/truth/, unless paused: then QEMU waits (-S)
    for a QMP cont and this returns as soon as QMP answers (wait_ready does the rest)."""
    directory = os.path.abspath(directory)
    kernel_dir = os.path.abspath(kernel_dir or os.path.join(directory, '..', 'image'))
    if pid_alive(directory):
        raise GuestError(f'{directory}: QEMU already running (use stop first)')
    if not os.path.exists(os.path.join(kernel_dir, 'initramfs.cpio.gz')):
        build_image(kernel_dir)
    ensure_qemu()
    os.makedirs(directory, exist_ok=True)
    for name in ('console.log', 'truth.log', 'raw.mem', 'core.elf', 'ram', 'qmp.sock',
                 'qmp-test.sock', 'gdb.sock', 'qemu.pid', 'qemu.err', 'guest.json'):
        if os.path.exists(os.path.join(directory, name)):
            os.unlink(os.path.join(directory, name))
    for name in os.listdir(directory):
        if name == 'truth' or name.startswith(('truth.new.', 'truth.old.')):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)

    def p(name):
        return os.path.join(directory, name)
    append = f'console=ttyS0 panic=-1 vmemfs.extra={extra}'
    argv = [qemu_binary(kernel_dir), '-accel', 'tcg', '-cpu', cpu, '-smp', '2', '-m', f'{mem}M',
            '-machine', 'q35,memory-backend=ram',
            '-object', f'memory-backend-file,id=ram,size={mem}M,mem-path={p("ram")},share=on',
            '-kernel', os.path.join(kernel_dir, 'vmlinuz'),
            '-initrd', os.path.join(kernel_dir, 'initramfs.cpio.gz'), '-append', append,
            '-serial', f'file:{p("console.log")}', '-serial', f'file:{p("truth.log")}',
            '-qmp', f'unix:{p("qmp.sock")},server=on,wait=off',
            # A second monitor, so a test can ask QEMU while vmemfs holds the first.
            '-qmp', f'unix:{p("qmp-test.sock")},server=on,wait=off',
            '-gdb', f'unix:{p("gdb.sock")},server=on,wait=off',
            '-display', 'none', '-vga', 'none']
    # -no-reboot turns every reset (a guest reboot, a panic, QMP system_reset) into an exit.
    argv += [] if reboot else ['-no-reboot']
    argv += ['-S'] if paused else []
    argv += ['-daemonize', '-pidfile', p('qemu.pid')]
    config = {'cpu': cpu, 'mem_mib': mem, 'extra': extra, 'append': append,
              'kernel_dir': kernel_dir, 'image': image_id(kernel_dir), 'boot_seconds': None,
              'argv': argv, 'paused': paused, 'reboot': reboot}
    start = time.monotonic()
    with open(p('qemu.err'), 'w') as err:
        if subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err).returncode:
            raise GuestError(f'{directory}: QEMU failed to start:\n{tail(p("qemu.err"))}')
    write_guest_json(directory, config)
    if paused:
        try:
            qmp = connect_qmp(directory, timeout=30)
            status = qmp.cmd('query-status')['status']
            qmp.close()
        except (OSError, GuestError) as e:
            stop(directory)
            raise GuestError(f'{directory}: QMP does not answer: {e}') from None
        if status != 'prelaunch':
            stop(directory)
            raise GuestError(f'{directory}: paused QEMU is {status}, not prelaunch')
        return time.monotonic() - start
    try:
        return wait_ready(directory, timeout, start=start)
    except GuestError:
        stop(directory)
        raise


def write_guest_json(directory, config):
    write_atomic(os.path.join(directory, 'guest.json'), json.dumps(config, indent=1) + '\n')


def read_guest_json(directory):
    try:
        return json.load(open(os.path.join(directory, 'guest.json')))
    except (OSError, ValueError):
        return None


def split_boots(text):
    """truth.log text -> [(boot_id, body)], one per boot in order. body is what that boot
    printed after its BOOT line. A log without BOOT lines (an older image) is one boot, id None.
    """
    found = list(BOOT_LINE.finditer(text))
    if not found:
        return [(None, text)] if text else []
    ends = [m.start() for m in found[1:]] + [len(text)]
    return [(m.group(1), text[m.end():end]) for m, end in zip(found, ends)]


def read_log(path, offset=0):
    """A serial log from byte `offset` on, \r removed ('' while it does not exist)."""
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            return f.read().decode('utf-8', 'replace').replace('\r', '')
    except FileNotFoundError:
        return ''


def wait_ready(directory, timeout=180, boot=None, start=None, after_offset=0):
    """Waits until truth.log holds at least `boot` boots (default 1; only boots whose BOOT line
    starts at or after byte `after_offset` count when it is given) and the last one printed
    READY, then writes DIR/truth/ from that last boot. Returns the seconds since `start`."""
    directory = os.path.abspath(directory)
    start = time.monotonic() if start is None else start
    log_path = os.path.join(directory, 'truth.log')
    has_pid_file = os.path.exists(os.path.join(directory, 'qemu.pid'))
    want = boot or 1
    while True:
        boots = split_boots(read_log(log_path, after_offset))
        if after_offset and boots and boots[0][0] is None:
            boots = []  # no BOOT line after the offset yet
        if len(boots) >= want and READY in boots[-1][1]:
            break
        why = None
        if has_pid_file and not pid_alive(directory):
            why = 'QEMU exited'
        elif time.monotonic() - start > timeout:
            why = f'no {READY} (boot {want}) after {timeout} s'
        if why:
            raise GuestError(f'{directory}: {why}; console tail:\n'
                             f'{tail(os.path.join(directory, "console.log"))}')
        time.sleep(0.5)
    seconds = time.monotonic() - start
    extract_truth(directory)
    config = read_guest_json(directory)
    if config is not None:
        config['boot_seconds'] = round(seconds, 1)
        write_guest_json(directory, config)
    return seconds


def exchange(a, b):
    """Atomically swaps the directory entries a and b (renameat2 RENAME_EXCHANGE); False if the
    kernel or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS):
        return False
    raise OSError(ctypes.get_errno(), f'renameat2 {a} {b}')


def read_boot_txt(truth):
    try:
        return dict(line.split(' ', 1) for line in
                    open(os.path.join(truth, 'boot.txt')).read().splitlines())
    except (OSError, ValueError):
        return {}


def extract_truth(directory):
    """Writes DIR/truth/ (formats in README.md) from the LAST boot in truth.log, replacing the
    whole directory at once. registers.txt and snapshot.txt are kept only when the truth is of
    the same boot as before; otherwise they, raw.mem and core.elf (the previous boot's) go."""
    boots = split_boots(read_log(os.path.join(directory, 'truth.log')))
    if not boots:
        raise GuestError(f'{directory}: truth.log is empty')
    boot_id, text = boots[-1]
    sections = dict(re.findall(r'^==VMEMFS-BEGIN (\S+)==\n(.*?)^==VMEMFS-END \1==$', text,
                               re.M | re.S))
    files = {'uname': 'uname.txt', 'banner': 'banner.txt', 'cmdline': 'cmdline.txt',
             'kallsyms': 'kallsyms.txt', 'ps': 'ps.tsv', 'markers': 'markers.txt',
             'meminfo': 'meminfo.txt', 'iomem': 'iomem.txt', 'modules': 'modules.txt'}
    missing = [n for n in files if n not in sections]
    if missing:
        raise GuestError(f'{directory}: truth.log (boot {len(boots)}) lacks sections {missing}')
    if 'markers32' in sections:  # x86-64 images only: the compat marker
        files['markers32'] = 'markers32.txt'
    if 'tasks' in sections:  # images from before the threads helper have none
        files['tasks'] = 'tasks.tsv'
    truth = os.path.join(directory, 'truth')
    new = os.path.join(directory, f'truth.new.{os.getpid()}')
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(os.path.join(new, 'maps'))
    for name, body in sections.items():
        if name.startswith('maps-'):
            write_atomic(os.path.join(new, 'maps', name[5:] + '.txt'), body)
        elif name in files:
            write_atomic(os.path.join(new, files[name]), body)
    boot_txt = {'boot': str(len(boots)), 'boot_id': boot_id or 'unknown'}
    write_atomic(os.path.join(new, 'boot.txt'), ''.join(f'{k} {v}\n' for k, v in boot_txt.items()))
    same_boot = boot_id is not None and read_boot_txt(truth) == boot_txt
    if same_boot:
        for name in ('registers.txt', 'snapshot.txt'):
            if os.path.exists(os.path.join(truth, name)):
                shutil.copy2(os.path.join(truth, name), os.path.join(new, name))
    else:
        for name in ('raw.mem', 'core.elf'):
            if os.path.exists(os.path.join(directory, name)):
                os.unlink(os.path.join(directory, name))
    if not os.path.exists(truth):
        os.rename(new, truth)
    elif exchange(new, truth):
        shutil.rmtree(new)
    else:  # not atomic: truth/ is missing for a moment
        old = os.path.join(directory, f'truth.old.{os.getpid()}')
        shutil.rmtree(old, ignore_errors=True)
        os.rename(truth, old)
        os.rename(new, truth)
        shutil.rmtree(old)


# --- cont, reset ----------------------------------------------------------------------------------

def cont(directory):
    directory = os.path.abspath(directory)
    if not pid_alive(directory):
        raise GuestError(f'{directory}: QEMU is not running')
    qmp = connect_qmp(directory, order=('qmp-test.sock', 'qmp.sock'))  # vmemfs may hold qmp.sock
    try:
        qmp.cmd('cont')
        return qmp.cmd('query-status')['status']
    finally:
        qmp.close()


def reset(directory, timeout=180):
    """QMP system_reset, then waits for the next boot's READY and rewrites DIR/truth/ from it.
    Returns the seconds from the reset to READY."""
    directory = os.path.abspath(directory)
    if not pid_alive(directory):
        raise GuestError(f'{directory}: QEMU is not running')
    config = read_guest_json(directory)
    if config is not None and not config.get('reboot'):
        raise GuestError(f'{directory}: booted without --reboot, a reset would end QEMU')
    qmp = connect_qmp(directory, order=('qmp-test.sock', 'qmp.sock'))  # vmemfs may hold qmp.sock
    try:
        status = qmp.cmd('query-status')['status']
        if status != 'running':
            raise GuestError(f'{directory}: guest is {status}, not running (cont first)')
        start = time.monotonic()
        qmp.cmd('system_reset')
        # After the RESET event the old boot can print nothing more: everything in truth.log
        # beyond this offset is the new boot's.
        qmp.wait_event('RESET', 30)
        offset = os.path.getsize(os.path.join(directory, 'truth.log'))
    finally:
        qmp.close()
    seconds = wait_ready(directory, timeout, start=start, after_offset=offset)
    config = read_guest_json(directory)
    if config is not None:
        config['reset_seconds'] = round(seconds, 1)
        write_guest_json(directory, config)
    return seconds


# --- snapshot -------------------------------------------------------------------------------------

SEGMENT = re.compile(r'^(ES|CS|SS|DS|FS|GS|LDT|TR) *=([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) '
                     r'([0-9a-f]+)', re.M)
TABLE = re.compile(r'^(GDT|IDT)= +([0-9a-f]+) ([0-9a-f]+)', re.M)
SIMPLE = re.compile(r'\b(R[A-Z0-9]{1,2}|RFL|CPL|HLT|CR[0234]|DR[0-7]|EFER) *=([0-9a-f]+)')
NAMES = {'rfl': 'rflags'}


def parse_registers(text):
    """'info registers -a' output -> [(vcpu, name, value)]."""
    out = []
    for block in re.split(r'^CPU#', text.replace('\r', ''), flags=re.M)[1:]:
        vcpu = int(block.split('\n', 1)[0])
        for name, value in SIMPLE.findall(block):
            out.append((vcpu, NAMES.get(name.lower(), name.lower()), int(value, 16)))
        for seg, sel, base, limit, flags in SEGMENT.findall(block):
            seg = seg.lower()
            out += [(vcpu, seg, int(sel, 16)), (vcpu, seg + '_base', int(base, 16)),
                    (vcpu, seg + '_limit', int(limit, 16)), (vcpu, seg + '_flags', int(flags, 16))]
        for table, base, limit in TABLE.findall(block):
            out += [(vcpu, table.lower() + '_base', int(base, 16)),
                    (vcpu, table.lower() + '_limit', int(limit, 16))]
    return out


# q35/pc map the RAM backend "ram" through these aliases; `info mtree` prints e.g.
#   0000000100000000-000000017fffffff (prio 0, ram): alias ram-above-4g @ram 0000000080000000-...
RAM_ALIAS = re.compile(r'^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, ram\): '
                       r'alias (ram-below-4g|ram-above-4g) @\S+ ([0-9a-f]+)-', re.M)


def ram_layout(qmp, ram_bytes):
    """[(name, guest-physical start, end (exclusive), offset in the RAM backend DIR/ram)],
    ascending. q35 puts all RAM below 4 GiB up to 2.75 GiB; from 2.75 GiB on 2 GiB below 4 GiB
    (ram-below-4g) and the rest from 4 GiB up (ram-above-4g)."""
    found = {}
    for m in RAM_ALIAS.finditer(qmp.hmp('info mtree')):
        start, last, offset = int(m.group(1), 16), int(m.group(2), 16), int(m.group(4), 16)
        found[m.group(3).replace('-', '_')] = (start, last + 1, offset)
    regions = sorted(((n,) + r for n, r in found.items()), key=lambda r: r[1])
    if not regions:
        raise GuestError('info mtree shows no ram-below-4g alias')
    if sum(end - start for _, start, end, _ in regions) != ram_bytes:
        raise GuestError(f'RAM aliases {regions} do not add up to {ram_bytes} bytes')
    return regions


class SparseSink(threading.Thread):
    """Reads a FIFO (that QEMU writes) to its end into the file `out_fd` from byte `offset` on;
    all-zero 64 KiB blocks are skipped, not written, so the file stays sparse. Keeps draining
    after an error so QEMU never blocks on a full pipe; the error is in .error."""
    BLOCK = 64 << 10

    def __init__(self, fifo, out_fd, offset):
        super().__init__(daemon=True)
        self.fifo, self.out_fd, self.offset = fifo, out_fd, offset
        self.error = None
        self.bytes = 0

    def run(self):
        try:
            fd = os.open(self.fifo, os.O_RDONLY)
        except OSError as e:
            self.error = e
            return
        try:
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
            zero = bytes(self.BLOCK)
            pending = bytearray()
            while True:
                data = os.read(fd, 1 << 20)
                if self.error is not None:
                    if not data:
                        return
                    continue
                pending += data
                full = len(pending) if not data else len(pending) // self.BLOCK * self.BLOCK
                try:
                    for i in range(0, full, self.BLOCK):
                        block = bytes(pending[i:i + self.BLOCK])
                        if block != zero[:len(block)]:
                            os.pwrite(self.out_fd, block, self.offset + self.bytes + i)
                except OSError as e:
                    self.error = e
                self.bytes += full
                del pending[:full]
                if not data:
                    return
        finally:
            os.close(fd)

    def finish(self, timeout=30):
        """Joins the thread; if QEMU never opened the FIFO, opens it for writing once so the
        reader's open() returns and it sees the end."""
        self.join(timeout)
        deadline = time.monotonic() + 5
        while self.is_alive() and time.monotonic() < deadline:
            try:
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                time.sleep(0.05)
            self.join(0.5)
        if self.is_alive():
            raise GuestError(f'{self.fifo}: reader does not finish')
        if self.error is not None:
            raise GuestError(f'{self.fifo}: {self.error}')


def qemu_to_sparse_file(qmp, fifo, out_fd, offset, command, **arguments):
    """Runs QMP `command` with its file argument pointing at `fifo`, while a SparseSink copies
    what QEMU writes there into out_fd at `offset`. Returns the number of bytes."""
    sink = SparseSink(fifo, out_fd, offset)
    sink.start()
    try:
        qmp.cmd(command, **arguments)
        if command == 'dump-guest-memory':
            while (status := qmp.cmd('query-dump'))['status'] == 'active':
                time.sleep(0.2)
            if status['status'] != 'completed':
                raise GuestError(f'dump-guest-memory ended as {status["status"]}')
    finally:
        sink.finish()
    return sink.bytes


def snapshot(directory):
    directory = os.path.abspath(directory)
    if not pid_alive(directory):
        raise GuestError(f'{directory}: QEMU is not running')
    truth = os.path.join(directory, 'truth')
    os.makedirs(truth, exist_ok=True)
    for name in ('raw.mem', 'core.elf', 'truth/registers.txt', 'truth/snapshot.txt',
                 'raw.mem.tmp', 'core.elf.tmp', 'snapshot.fifo'):
        if os.path.exists(os.path.join(directory, name)):
            os.unlink(os.path.join(directory, name))
    fifo = os.path.join(directory, 'snapshot.fifo')
    os.mkfifo(fifo, 0o600)
    raw_fd = os.open(os.path.join(directory, 'raw.mem.tmp'), os.O_WRONLY | os.O_CREAT, 0o644)
    core_fd = os.open(os.path.join(directory, 'core.elf.tmp'), os.O_WRONLY | os.O_CREAT, 0o644)
    qmp = connect_qmp(directory)
    start = time.monotonic()
    qmp.cmd('stop')
    try:
        ram = qmp.cmd('query-memory-size-summary')['base-memory']
        layout = ram_layout(qmp, ram)
        # raw.mem: file offset == guest-physical address; one pmemsave per RAM region, the
        # gap between them (the PCI hole below 4 GiB) stays a hole.
        for _, gpa_start, gpa_end, _ in layout:
            qemu_to_sparse_file(qmp, fifo, raw_fd, gpa_start, 'pmemsave', val=gpa_start,
                                size=gpa_end - gpa_start, filename=fifo)
        raw_bytes = layout[-1][2]
        os.ftruncate(raw_fd, raw_bytes)
        core_bytes = qemu_to_sparse_file(qmp, fifo, core_fd, 0, 'dump-guest-memory',
                                         paging=False, detach=True, protocol='file:' + fifo)
        os.ftruncate(core_fd, core_bytes)
        regs = parse_registers(qmp.hmp('info registers -a'))
        cpus = qmp.cmd('query-cpus-fast')
    finally:
        qmp.cmd('cont')
        qmp.close()
        os.close(raw_fd)
        os.close(core_fd)
        os.unlink(fifo)
    vcpus = sorted({v for v, _, _ in regs})
    if len(vcpus) != len(cpus):
        raise GuestError(f'{directory}: registers for {len(vcpus)} vCPUs, QEMU has {len(cpus)}')
    write_atomic(os.path.join(truth, 'registers.txt'),
                 ''.join(f'{v} {n} {x:x}\n' for v, n, x in regs))
    cr4 = {v: x for v, n, x in regs if n == 'cr4'}
    write_atomic(os.path.join(truth, 'snapshot.txt'),
                 f'vcpus {len(cpus)}\nram_bytes {ram}\nla57 {int(bool(cr4[0] & CR4_LA57))}\n'
                 f'pae {int(bool(cr4[0] & CR4_PAE))}\n'
                 f'time {int(time.time())}\n' +
                 ''.join(f'{name} {s:x} {e:x} {o:x}\n' for name, s, e, o in layout) +
                 f'raw_bytes {raw_bytes}\n')
    for name in ('raw.mem', 'core.elf'):
        os.replace(os.path.join(directory, name + '.tmp'), os.path.join(directory, name))
    return time.monotonic() - start


# --- stop -----------------------------------------------------------------------------------------

def stop(directory):
    pid = pid_alive(directory)
    if not pid:
        return
    try:
        qmp = connect_qmp(directory, timeout=10)
        qmp.cmd('quit')
        qmp.close()
    except (OSError, GuestError):
        pass
    for _ in range(100):
        if not pid_alive(directory):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


# --- prepare --------------------------------------------------------------------------------------

# name, -cpu, kernel flavour (image directory ROOT/image for cloud-amd64, else
# ROOT/image-<flavour>), the paging mode the guest must run in (checked on CR4 after the
# snapshot). qemu32 has no PAE; the 686 kernel never turns it on anyway.
GUESTS = (('l5', 'max', 'cloud-amd64', 'la57'), ('l4', 'qemu64', 'cloud-amd64', '4level'),
          ('pae', 'max', '686-pae', 'pae'), ('legacy32', 'qemu32', '686', 'legacy32'))


def image_dir_of(root, flavour):
    return os.path.join(root, 'image' if flavour == 'cloud-amd64' else f'image-{flavour}')
SNAPSHOT_FILES = ('raw.mem', 'core.elf', 'truth/registers.txt', 'truth/snapshot.txt',
                  'truth/kallsyms.txt', 'truth/ps.tsv', 'guest.json')


def reusable(directory, cpu, extra, image_dir):
    if not pid_alive(directory):
        return False
    if not all(os.path.exists(os.path.join(directory, f)) for f in SNAPSHOT_FILES):
        return False
    config = json.load(open(os.path.join(directory, 'guest.json')))
    return (config['cpu'], config['extra'], config.get('image')) == (cpu, extra,
                                                                       image_id(image_dir))


def check_paging(directory, want):
    """want: la57, 4level (CR4.PAE, no LA57), pae (CR4.PAE; a 32-bit CPU has no LA57) or
    legacy32 (no CR4.PAE)."""
    for line in open(os.path.join(directory, 'truth', 'registers.txt')):
        vcpu, name, value = line.split()
        if name != 'cr4':
            continue
        cr4 = int(value, 16)
        la57, pae = bool(cr4 & CR4_LA57), bool(cr4 & CR4_PAE)
        ok = {'la57': la57, '4level': pae and not la57, 'pae': pae and not la57,
              'legacy32': not pae and not la57}[want]
        if not ok:
            raise GuestError(f'{directory}: vCPU {vcpu} CR4={value}, not {want} paging')


# x86-64's link-time _text. KASLR picks the slide 0 about once in 500 boots; the tests check that
# what they derive is un-slid, which a zero slide cannot show, so prepare boots such a guest again.
X86_64_LINK_TEXT = 0xffffffff81000000


def kaslr_slide(directory):
    for line in open(os.path.join(directory, 'truth', 'kallsyms.txt')):
        fields = line.split()
        if len(fields) >= 3 and fields[2] == '_text':
            return int(fields[0], 16) - X86_64_LINK_TEXT
    raise GuestError(f'{directory}: truth/kallsyms.txt has no _text')


def prepare_one(root, name, cpu, flavour, paging, extra, results):
    directory = os.path.join(root, name)
    image = image_dir_of(root, flavour)
    try:
        slid = lambda: flavour != 'cloud-amd64' or kaslr_slide(directory) != 0
        if reusable(directory, cpu, extra, image) and slid():
            results[name] = 'reused running guest'
        else:
            for attempt in range(1, 4):
                stop(directory)
                boot_s = boot(directory, cpu, extra=extra, kernel_dir=image)
                if slid():
                    break
                log(f'{name}: KASLR chose slide 0 (boot {attempt}); booting again')
            snap_s = snapshot(directory)
            results[name] = f'booted in {boot_s:.1f} s, snapshot in {snap_s:.1f} s'
        check_paging(directory, paging)
    except Exception as e:  # reported by the main thread
        results[name] = e


def prepare(root, extra, names=None):
    root = os.path.abspath(root)
    start = time.monotonic()
    guests = [g for g in GUESTS if names is None or g[0] in names]
    for flavour in sorted({g[2] for g in guests}):
        build_image(image_dir_of(root, flavour), flavour)
    log(f'images ready in {time.monotonic() - start:.1f} s')
    results = {}
    threads = [threading.Thread(target=prepare_one, args=(root, n, c, f, pg, extra, results))
               for n, c, f, pg in guests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = False
    for name, _, _, _ in guests:
        failed |= isinstance(results[name], Exception)
        log(f'{name}: {results[name]}')
    log(f'prepare took {time.monotonic() - start:.1f} s')
    if failed:
        raise GuestError('prepare failed')


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    b = sub.add_parser('boot')
    b.add_argument('--dir', required=True)
    b.add_argument('--cpu', required=True,
                   help='max (5-level paging) or qemu64 (4-level); i386 images: max (PAE), qemu32')
    b.add_argument('--mem', type=int, default=256,
                   help='MiB; from 2816 on q35 puts 2 GiB below 4 GiB and the rest above')
    b.add_argument('--extra', type=int, default=0, help='extra sleeping processes')
    b.add_argument('--kernel-dir', help='build-guest.sh output (default DIR/../image)')
    b.add_argument('--timeout', type=int, default=180)
    b.add_argument('--paused', action='store_true',
                   help='QEMU -S: return once QMP answers; cont, then wait-ready')
    b.add_argument('--reboot', action='store_true',
                   help='no -no-reboot: a reset or guest reboot boots again instead of exiting')
    w = sub.add_parser('wait-ready')
    w.add_argument('--dir', required=True)
    w.add_argument('--timeout', type=int, default=180)
    w.add_argument('--boot', type=int, help='wait until at least N boots (default 1)')
    r = sub.add_parser('reset')
    r.add_argument('--dir', required=True)
    r.add_argument('--timeout', type=int, default=180)
    for name in ('snapshot', 'stop', 'cont'):
        sub.add_parser(name).add_argument('--dir', required=True)
    p = sub.add_parser('prepare')
    p.add_argument('--root', required=True)
    p.add_argument('--extra', type=int, default=300, help='extra sleeping processes per guest')
    p.add_argument('--guests', help='comma-separated subset of ' +
                   ','.join(g[0] for g in GUESTS) + ' (default: all)')
    args = parser.parse_args()
    try:
        if args.command == 'boot':
            seconds = boot(args.dir, args.cpu, args.mem, args.extra, args.kernel_dir, args.timeout,
                           args.paused, args.reboot)
            log(f'{args.dir}: {"paused" if args.paused else "ready"} after {seconds:.1f} s')
        elif args.command == 'wait-ready':
            seconds = wait_ready(args.dir, args.timeout, args.boot)
            boot_txt = read_boot_txt(os.path.join(args.dir, 'truth'))
            log(f'{args.dir}: boot {boot_txt.get("boot")} ready after {seconds:.1f} s')
        elif args.command == 'cont':
            log(f'{args.dir}: {cont(args.dir)}')
        elif args.command == 'reset':
            seconds = reset(args.dir, args.timeout)
            boot_txt = read_boot_txt(os.path.join(args.dir, 'truth'))
            log(f'{args.dir}: reset to READY of boot {boot_txt.get("boot")} in {seconds:.1f} s')
        elif args.command == 'snapshot':
            log(f'{args.dir}: snapshot in {snapshot(args.dir):.1f} s')
        elif args.command == 'stop':
            stop(args.dir)
        else:
            prepare(args.root, args.extra,
                    args.guests.split(',') if args.guests else None)
    except GuestError as e:
        sys.exit(f'guest.py: {e}')


if __name__ == '__main__':
    main()
