# SPDX-License-Identifier: MIT
# kv_first.py PORT: the first request to a fresh examples/kv server: SET a
# value of 120 bytes (kv_copy_value's bug spoils the last 8 bytes of a
# value of 100 bytes or more), GET it back; prints "fixed" when it comes
# back whole, "broken" when not.
import socket
import sys

value = bytes((i * 7 + 3) % 256 for i in range(120))
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
s.sendall(b"SET first %d\r\n" % len(value) + value + b"\r\n")
line = f.readline()
if line != b"STORED\r\n":
    sys.exit("SET: %r" % line)
s.sendall(b"GET first\r\n")
head = f.readline().split()
if len(head) != 3 or head[0] != b"VALUE":
    sys.exit("GET: %r" % head)
data = f.read(int(head[1]) + 2)[:-2]
print("fixed" if data == value else "broken")
