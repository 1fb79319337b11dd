#!/usr/bin/env python3
"""Prints the TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret or otpauth:// URI.

Usage: totp.py SECRET_OR_URI [STEPS_AHEAD]
The demo uses it to play the part of alice's authenticator app.
"""
import base64, hashlib, hmac, struct, sys, time, urllib.parse

arg = sys.argv[1]
if arg.startswith("otpauth://"):
    arg = urllib.parse.parse_qs(urllib.parse.urlparse(arg).query)["secret"][0]
secret = base64.b32decode(arg.upper() + "=" * (-len(arg) % 8))
step = int(time.time()) // 30 + (int(sys.argv[2]) if len(sys.argv) > 2 else 0)
digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
offset = digest[-1] & 15
print("%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
