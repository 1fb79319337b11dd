#!/usr/bin/env python3
"""Drives one PAM transaction through libpam, for what pamtester cannot do (pam_setcred).

Usage: pam_driver.py SERVICE USER OP... with OP in authenticate, setcred, acct_mgmt.
Prompts are answered with the lines of stdin, in order. Prints every message it is shown and
"OP=CODE" (the numeric PAM return code) for each operation; stops at the first failure.
Run it where /etc/pam.d holds the test's service files (a private mount namespace).
"""

import ctypes
import sys

PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON = 1, 2
PAM_ESTABLISH_CRED = 0x2

ctypes.CDLL("libpam.so.0", mode=ctypes.RTLD_GLOBAL)
pam = ctypes.CDLL(None)
libc = ctypes.CDLL("libc.so.6")
libc.calloc.restype = ctypes.c_void_p
libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.strdup.restype = ctypes.c_void_p
libc.strdup.argtypes = [ctypes.c_char_p]


class Message(ctypes.Structure):
    _fields_ = [("style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class Response(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("retcode", ctypes.c_int)]


CONV = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
answers = sys.stdin.read().splitlines()


@CONV
def conv(n, msgs, resp, _data):
    # Linux-PAM passes an array of pointers to messages; the replies are malloc'd by us and
    # freed by the module.
    msgs = ctypes.cast(msgs, ctypes.POINTER(ctypes.POINTER(Message)))
    replies = libc.calloc(n, ctypes.sizeof(Response))
    out = ctypes.cast(replies, ctypes.POINTER(Response))
    for i in range(n):
        m = msgs[i].contents
        print(m.msg.decode(errors="replace"), flush=True)
        if m.style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
            if not answers:
                return 19  # PAM_CONV_ERR
            out[i].resp = libc.strdup(answers.pop(0).encode())
    ctypes.cast(resp, ctypes.POINTER(ctypes.c_void_p))[0] = replies
    return 0


class Conv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata", ctypes.c_void_p)]


def main():
    service, user, ops = sys.argv[1], sys.argv[2], sys.argv[3:]
    handle = ctypes.c_void_p()
    c = Conv(conv, None)
    rc = pam.pam_start(service.encode(), user.encode(), ctypes.byref(c), ctypes.byref(handle))
    if rc != 0:
        print(f"pam_start={rc}")
        return 1
    calls = {
        "authenticate": lambda: pam.pam_authenticate(handle, 0),
        "setcred": lambda: pam.pam_setcred(handle, PAM_ESTABLISH_CRED),
        "acct_mgmt": lambda: pam.pam_acct_mgmt(handle, 0),
    }
    status = 0
    for op in ops:
        rc = calls[op]()
        print(f"{op}={rc}", flush=True)
        if rc != 0:
            status = 1
            break
    pam.pam_end(handle, 0)
    return status


sys.exit(main())
