#!/usr/bin/env python3
"""fill_store.py - pre-fill an ndesmock state directory with N issued certs.

    fill_store.py --state STATE --count 100000 --pem SOME_CERT.pem

Writes STATE/certs/XX/<random serial>.pem (XX = the serial's last two hex
digits, the shard store.c uses; a copy of SOME_CERT.pem's bytes) and one
index.txt line per file, as store.c does, without enrolling. Only the size of
the directory and of index.txt matter: the server never reads them back.
"""
import argparse
import os
import secrets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--pem", required=True)
    a = ap.parse_args()
    pem = open(a.pem, "rb").read()
    certs = os.path.join(a.state, "certs")
    os.makedirs(certs, exist_ok=True)
    lines = []
    for i in range(a.count):
        serial = secrets.token_hex(16).upper()
        shard = os.path.join(certs, serial[-2:])
        os.makedirs(shard, exist_ok=True)
        fd = os.open(os.path.join(shard, serial + ".pem"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, pem)
        os.close(fd)
        lines.append("V\t271231000000Z\t\t%s\tunknown\t/CN=prefill-%d\n" % (serial, i))
    with open(os.path.join(a.state, "index.txt"), "a") as f:
        f.write("".join(lines))


if __name__ == "__main__":
    main()
