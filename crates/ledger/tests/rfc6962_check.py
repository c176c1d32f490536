#!/usr/bin/env python3
"""Independent check of mamori-ledger's output, using only the Python standard library.

Reads JSON on stdin (written by tests/independent_check.rs) and checks, from the
definitions rather than from our code:

- every tree head, by RFC 6962 section 2.1's recursive MTH over the leaf data;
- every inclusion and consistency proof, by equality with RFC 6962 section 2.1.1/2.1.2's
  recursive PATH and PROOF, and by RFC 9162 section 2.1.3.2/2.1.4.2 verification;
- the signed checkpoint: the c2sp.org/tlog-checkpoint body against the recomputed head, the
  c2sp.org/signed-note key id, and the Ed25519 signature (RFC 8032 section 5.1.7, in pure
  Python: hashlib's SHA-512 and integer arithmetic).

Exits 0 and prints a summary if everything holds; otherwise prints the first failure and
exits 1.
"""

import base64
import hashlib
import json
import sys


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split_point(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = split_point(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    n = len(leaves)
    if n <= 1:
        return []
    k = split_point(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, complete):
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split_point(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def consistency_proof(m, leaves):
    if m == 0 or m == len(leaves):
        return []
    return subproof(m, leaves, True)


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2, with the trivial cases the RFC leaves out."""
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == sha256(b"")
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- Ed25519 verification, RFC 8032 section 5.1.7 ------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def point_add(a, b):
    pa = (a[1] - a[0]) * (b[1] - b[0]) % P
    pb = (a[1] + a[0]) * (b[1] + b[0]) % P
    pc = 2 * a[3] * b[3] * D % P
    pd = 2 * a[2] * b[2] % P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(s, point):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = point_add(acc, point)
        point = point_add(point, point)
        s >>= 1
    return acc


def point_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


G_Y = 4 * pow(5, P - 2, P) % P
G = (recover_x(G_Y, 0), G_Y, 1, recover_x(G_Y, 0) * G_Y % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = decompress(public)
    r = decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return point_equal(point_mul(s, G), point_add(r, point_mul(k, a)))


# --- the checks -------------------------------------------------------------------------------


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def check_checkpoint(cp, leaves):
    name, key_id, material = cp["vkey"].split("+", 2)
    raw = base64.b64decode(material, validate=True)
    check(raw[0] == 1 and len(raw) == 33, "vkey is not an Ed25519 key")
    public = raw[1:]
    computed_id = sha256(name.encode() + b"\n" + raw)[:4].hex()
    check(computed_id == key_id, "vkey id %s, computed %s" % (key_id, computed_id))

    note = cp["note"].encode()
    split = note.rfind(b"\n\n")
    check(split > 0, "note has no blank line")
    text, sig_lines = note[: split + 1], note[split + 2 :]
    lines = text.decode().split("\n")
    check(lines[-1] == "" and len(lines) >= 4, "checkpoint body shape")
    size = int(lines[1])
    check(str(size) == lines[1], "checkpoint size not canonical")
    check(size <= len(leaves), "checkpoint larger than the leaves given")
    root = base64.b64decode(lines[2], validate=True)
    check(root == mth(leaves[:size]), "checkpoint root is not the head of the first %d leaves" % size)

    verified = 0
    for line in sig_lines.decode().split("\n")[:-1]:
        check(line.startswith("\u2014 "), "signature line prefix")
        sig_name, blob = line[2:].split(" ")
        blob = base64.b64decode(blob, validate=True)
        if sig_name == name and blob[:4].hex() == key_id:
            check(ed25519_verify(public, text, blob[4:]), "Ed25519 signature by %s does not verify" % name)
            verified += 1
    check(verified >= 1, "no signature by the trusted key")
    return size


def main():
    data = json.load(sys.stdin)
    leaves = [bytes.fromhex(x) for x in data["leaves"]]

    for size_text, root in data["roots"].items():
        size = int(size_text)
        check(bytes.fromhex(root) == mth(leaves[:size]), "tree head at size %d" % size)

    for item in data["inclusion"]:
        index, size = item["index"], item["size"]
        proof = [bytes.fromhex(x) for x in item["path"]]
        subtree = leaves[:size]
        check(proof == path(index, subtree), "inclusion proof %d in %d differs from RFC 6962 PATH" % (index, size))
        check(
            verify_inclusion(index, size, leaf_hash(leaves[index]), proof, mth(subtree)),
            "inclusion proof %d in %d does not verify" % (index, size),
        )

    for item in data["consistency"]:
        first, second = item["first"], item["second"]
        proof = [bytes.fromhex(x) for x in item["path"]]
        subtree = leaves[:second]
        check(
            proof == consistency_proof(first, subtree),
            "consistency proof %d -> %d differs from RFC 6962 PROOF" % (first, second),
        )
        check(
            verify_consistency(first, second, mth(leaves[:first]), mth(subtree), proof),
            "consistency proof %d -> %d does not verify" % (first, second),
        )

    size = check_checkpoint(data["checkpoint"], leaves)
    print(
        "ok: %d heads, %d inclusion and %d consistency proofs, checkpoint at size %d"
        % (len(data["roots"]), len(data["inclusion"]), len(data["consistency"]), size)
    )


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        print("FAILED: %s" % failure)
        sys.exit(1)
