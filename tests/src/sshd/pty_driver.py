"""Runs a program on a pseudo-terminal, as a person at a terminal would, and answers its prompts.

Usage: pty_driver.py TIMEOUT_SECONDS RULES_JSON ARGV...

RULES_JSON is a list of [regex, answer] pairs. Whenever a regex matches output that no earlier
answer consumed, its answer is typed followed by Enter (the earliest match in the output wins).
At most 20 answers are typed, so a program that keeps asking cannot loop forever.

Prints everything the program wrote to the terminal (the transcript) and exits with the
program's exit status (128 + signal if it was killed). If the program has not exited after
TIMEOUT_SECONDS, it is killed, the transcript is printed with a last line
"pty_driver: timed out", and the exit status is 124. Nothing here waits without a bound.
"""
import json
import os
import pty
import re
import select
import signal
import sys
import time

MAX_ANSWERS = 20


def main():
    timeout = float(sys.argv[1])
    rules = [(re.compile(p.encode()), a.encode()) for p, a in json.loads(sys.argv[2])]
    argv = sys.argv[3:]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    consumed = 0
    answers = 0
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the program closed the terminal
            data = b""
        if not data:
            break
        out += data
        while answers < MAX_ANSWERS:
            found = None
            for regex, answer in rules:
                m = regex.search(out, consumed)
                if m and (found is None or m.start() < found[0].start()):
                    found = (m, answer)
            if found is None:
                break
            consumed = found[0].end()
            os.write(fd, found[1] + b"\r")
            answers += 1
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    if timed_out:
        sys.stdout.write("\npty_driver: timed out\n")
        sys.exit(124)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


main()
