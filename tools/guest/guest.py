#!/usr/bin/python3
"""Boots vmemfs test guests under QEMU (TCG), snapshots them and extracts their ground truth.

Subcommands (see README.md for the file formats):
  boot     --dir DIR --cpu max|qemu64 [--mem 256] [--extra N] [--kernel-dir IMG]
  snapshot --dir DIR      pause; DIR/raw.mem + DIR/core.elf + DIR/truth/registers.txt; resume
  stop     --dir DIR      quit QEMU
  prepare  --root ROOT    ROOT/image + two running, snapshotted guests ROOT/l5 and ROOT/l4
Python 3 standard library only.
"""
import argparse
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
CR4_LA57 = 1 << 12


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
        self.sock.connect(path)
        self.file = self.sock.makefile('rwb')
        self.events = []
        self._read()  # greeting
        self.cmd('qmp_capabilities')

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

    def close(self):
        self.sock.close()


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


def build_image(image_dir):
    subprocess.run([os.path.join(HERE, 'build-guest.sh'), image_dir], check=True)


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

def boot(directory, cpu, mem=256, extra=0, kernel_dir=None, timeout=180):
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
    shutil.rmtree(os.path.join(directory, 'truth'), ignore_errors=True)

    def p(name):
        return os.path.join(directory, name)
    append = f'console=ttyS0 panic=-1 vmemfs.extra={extra}'
    argv = ['qemu-system-x86_64', '-accel', 'tcg', '-cpu', cpu, '-smp', '2', '-m', f'{mem}M',
            '-machine', 'q35,memory-backend=ram',
            '-object', f'memory-backend-file,id=ram,size={mem}M,mem-path={p("ram")},share=on',
            '-kernel', os.path.join(kernel_dir, 'vmlinuz'),
            '-initrd', os.path.join(kernel_dir, 'initramfs.cpio.gz'), '-append', append,
            '-serial', f'file:{p("console.log")}', '-serial', f'file:{p("truth.log")}',
            '-qmp', f'unix:{p("qmp.sock")},server=on,wait=off',
            # A second monitor, so a test can ask QEMU while vmemfs holds the first.
            '-qmp', f'unix:{p("qmp-test.sock")},server=on,wait=off',
            '-gdb', f'unix:{p("gdb.sock")},server=on,wait=off',
            '-display', 'none', '-vga', 'none', '-no-reboot', '-daemonize', '-pidfile', p('qemu.pid')]
    start = time.monotonic()
    with open(p('qemu.err'), 'w') as err:
        if subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err).returncode:
            raise GuestError(f'{directory}: QEMU failed to start:\n{tail(p("qemu.err"))}')
    while True:
        with open(p('truth.log'), 'rb') as f:
            if READY.encode() in f.read():
                break
        why = None
        if not pid_alive(directory):
            why = 'QEMU exited'
        elif time.monotonic() - start > timeout:
            why = f'no {READY} after {timeout} s'
        if why:
            stop(directory)
            raise GuestError(f'{directory}: {why}; console tail:\n{tail(p("console.log"))}')
        time.sleep(0.5)
    seconds = time.monotonic() - start
    extract_truth(directory)
    write_atomic(p('guest.json'), json.dumps({
        'cpu': cpu, 'mem_mib': mem, 'extra': extra, 'append': append, 'kernel_dir': kernel_dir,
        'image': image_id(kernel_dir), 'boot_seconds': round(seconds, 1), 'argv': argv},
        indent=1) + '\n')
    return seconds


def extract_truth(directory):
    """Splits truth.log into the files of DIR/truth/ (formats in README.md)."""
    text = open(os.path.join(directory, 'truth.log'), 'rb').read().decode('utf-8', 'replace')
    text = text.replace('\r', '')
    sections = dict(re.findall(r'^==VMEMFS-BEGIN (\S+)==\n(.*?)^==VMEMFS-END \1==$', text,
                               re.M | re.S))
    truth = os.path.join(directory, 'truth')
    os.makedirs(os.path.join(truth, 'maps'), exist_ok=True)
    files = {'uname': 'uname.txt', 'banner': 'banner.txt', 'cmdline': 'cmdline.txt',
             'kallsyms': 'kallsyms.txt', 'ps': 'ps.tsv', 'markers': 'markers.txt',
             'meminfo': 'meminfo.txt', 'iomem': 'iomem.txt', 'modules': 'modules.txt'}
    for name, body in sections.items():
        if name.startswith('maps-'):
            write_atomic(os.path.join(truth, 'maps', name[5:] + '.txt'), body)
        elif name in files:
            write_atomic(os.path.join(truth, files[name]), body)
    missing = [n for n in files if n not in sections]
    if missing:
        raise GuestError(f'{directory}: truth.log lacks sections {missing}')


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


def snapshot(directory):
    directory = os.path.abspath(directory)
    if not pid_alive(directory):
        raise GuestError(f'{directory}: QEMU is not running')
    truth = os.path.join(directory, 'truth')
    os.makedirs(truth, exist_ok=True)
    for name in ('raw.mem', 'core.elf', 'truth/registers.txt', 'truth/snapshot.txt'):
        if os.path.exists(os.path.join(directory, name)):
            os.unlink(os.path.join(directory, name))
    qmp = Qmp(os.path.join(directory, 'qmp.sock'))
    start = time.monotonic()
    qmp.cmd('stop')
    try:
        ram = qmp.cmd('query-memory-size-summary')['base-memory']
        qmp.cmd('pmemsave', val=0, size=ram, filename=os.path.join(directory, 'raw.mem.tmp'))
        qmp.cmd('dump-guest-memory', paging=False, detach=True,
                protocol='file:' + os.path.join(directory, 'core.elf.tmp'))
        while (status := qmp.cmd('query-dump'))['status'] == 'active':
            time.sleep(0.2)
        if status['status'] != 'completed':
            raise GuestError(f'{directory}: dump-guest-memory ended as {status["status"]}')
        regs = parse_registers(qmp.hmp('info registers -a'))
        cpus = qmp.cmd('query-cpus-fast')
    finally:
        qmp.cmd('cont')
        qmp.close()
    vcpus = sorted({v for v, _, _ in regs})
    if len(vcpus) != len(cpus):
        raise GuestError(f'{directory}: registers for {len(vcpus)} vCPUs, QEMU has {len(cpus)}')
    write_atomic(os.path.join(truth, 'registers.txt'),
                 ''.join(f'{v} {n} {x:x}\n' for v, n, x in regs))
    cr4 = {v: x for v, n, x in regs if n == 'cr4'}
    write_atomic(os.path.join(truth, 'snapshot.txt'),
                 f'vcpus {len(cpus)}\nram_bytes {ram}\nla57 {int(bool(cr4[0] & CR4_LA57))}\n'
                 f'time {int(time.time())}\n')
    for name in ('raw.mem', 'core.elf'):  # QEMU creates them 0600/0400
        os.chmod(os.path.join(directory, name + '.tmp'), 0o644)
        os.replace(os.path.join(directory, name + '.tmp'), os.path.join(directory, name))
    return time.monotonic() - start


# --- stop -----------------------------------------------------------------------------------------

def stop(directory):
    pid = pid_alive(directory)
    if not pid:
        return
    try:
        qmp = Qmp(os.path.join(directory, 'qmp.sock'), timeout=10)
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

GUESTS = (('l5', 'max', True), ('l4', 'qemu64', False))
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


def check_la57(directory, want):
    for line in open(os.path.join(directory, 'truth', 'registers.txt')):
        vcpu, name, value = line.split()
        if name == 'cr4' and bool(int(value, 16) & CR4_LA57) != want:
            raise GuestError(f'{directory}: vCPU {vcpu} CR4={value}, LA57 should be {want}')


def prepare_one(root, name, cpu, want_la57, extra, results):
    directory = os.path.join(root, name)
    try:
        if reusable(directory, cpu, extra, os.path.join(root, 'image')):
            results[name] = 'reused running guest'
        else:
            stop(directory)
            boot_s = boot(directory, cpu, extra=extra, kernel_dir=os.path.join(root, 'image'))
            snap_s = snapshot(directory)
            results[name] = f'booted in {boot_s:.1f} s, snapshot in {snap_s:.1f} s'
        check_la57(directory, want_la57)
    except Exception as e:  # reported by the main thread
        results[name] = e


def prepare(root, extra):
    root = os.path.abspath(root)
    start = time.monotonic()
    build_image(os.path.join(root, 'image'))
    log(f'image ready in {time.monotonic() - start:.1f} s')
    results = {}
    threads = [threading.Thread(target=prepare_one, args=(root, n, c, la57, extra, results))
               for n, c, la57 in GUESTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = False
    for name, _, _ in GUESTS:
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
    b.add_argument('--cpu', required=True, help='max (5-level paging) or qemu64 (4-level)')
    b.add_argument('--mem', type=int, default=256, help='MiB, at most 2048 (RAM below 4 GiB)')
    b.add_argument('--extra', type=int, default=0, help='extra sleeping processes')
    b.add_argument('--kernel-dir', help='build-guest.sh output (default DIR/../image)')
    b.add_argument('--timeout', type=int, default=180)
    for name in ('snapshot', 'stop'):
        sub.add_parser(name).add_argument('--dir', required=True)
    p = sub.add_parser('prepare')
    p.add_argument('--root', required=True)
    p.add_argument('--extra', type=int, default=300, help='extra sleeping processes per guest')
    args = parser.parse_args()
    try:
        if args.command == 'boot':
            seconds = boot(args.dir, args.cpu, args.mem, args.extra, args.kernel_dir, args.timeout)
            log(f'{args.dir}: ready after {seconds:.1f} s')
        elif args.command == 'snapshot':
            log(f'{args.dir}: snapshot in {snapshot(args.dir):.1f} s')
        elif args.command == 'stop':
            stop(args.dir)
        else:
            prepare(args.root, args.extra)
    except GuestError as e:
        sys.exit(f'guest.py: {e}')


if __name__ == '__main__':
    main()
