//! A specialised scanner for Zeek's JSON `conn.log` lines (`LogAscii::use_json`): one flat
//! object per line, keys in any order, values strings, numbers, `true`/`false`/`null`.
//!
//! It fills the same [`ConnJson`](crate::zeek::ConnJson) that `serde_json` fills on the
//! reference path, about four times faster (docs/benchmarks/flow-decode.md), because it
//! only has to recognise eleven keys and skip the rest in place, and because it expects
//! each line's keys in the previous line's order ([`KeyOrder`]: one 16-byte compare a
//! key, no key search).
//!
//! **Architecture invariant:** the scanner either returns exactly what `serde_json` would
//! deserialize from the line, or declines (`None`) and the line takes the `serde_json`
//! path: correctness never depends on the fast path (CI-1). It declines on anything it
//! does not fully understand: nested values, `\u` escapes, escapes in keys or in the
//! strings it keeps, control characters, non-ASCII bytes, exponents, numbers of more than
//! 19 digits, a repeated known key, trailing bytes. Numbers for `ts` and `duration` are
//! converted as `serde_json` converts them (integer significand, then one division by a
//! power of ten), so the resulting `f64` is bit for bit the same. The differential tests
//! (`zeek_json::tests`, `equivalence` tests) hold it to that on every line of the real logs
//! and on mutated lines.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use crate::zeek::ConnFields;

/// Powers of ten as `serde_json` writes them (the same literals; exact up to 1e22).
const POW10: [f64; 31] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30,
];

/// The known keys, as bit positions in the "seen" mask.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Key {
    Ts,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Duration,
    OrigPkts,
    OrigIpBytes,
    RespPkts,
    RespIpBytes,
}

/// The first eight bytes of a key, as one word.
#[allow(clippy::indexing_slicing)] // const, on literals of at least eight bytes
const fn word(s: &[u8]) -> u64 {
    u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
}

/// A known key, or `None`: one length switch and one or two word compares (the
/// keys of nine and thirteen bytes share lengths; a byte-slice `match` costs a
/// `memcmp` call per candidate).
fn key(k: &[u8]) -> Option<Key> {
    const ID_ORIG: u64 = word(b"id.orig_");
    const ID_RESP: u64 = word(b"id.resp_");
    const ORIG_PKT: u64 = word(b"orig_pkt");
    const RESP_PKT: u64 = word(b"resp_pkt");
    const ORIG_IP_: u64 = word(b"orig_ip_");
    const RESP_IP_: u64 = word(b"resp_ip_");
    const DURATION: u64 = word(b"duration");
    let head = || -> Option<u64> { Some(u64::from_le_bytes(k.get(..8)?.try_into().ok()?)) };
    let tail = |t: &[u8]| k.get(8..) == Some(t);
    Some(match k.len() {
        2 if k == b"ts" => Key::Ts,
        5 if k == b"proto" => Key::Proto,
        8 if head()? == DURATION => Key::Duration,
        9 => match (head()?, k.get(8)?) {
            (ID_ORIG, b'h') => Key::OrigH,
            (ID_ORIG, b'p') => Key::OrigP,
            (ID_RESP, b'h') => Key::RespH,
            (ID_RESP, b'p') => Key::RespP,
            (ORIG_PKT, b's') => Key::OrigPkts,
            (RESP_PKT, b's') => Key::RespPkts,
            _ => return None,
        },
        13 if tail(b"bytes") => match head()? {
            ORIG_IP_ => Key::OrigIpBytes,
            RESP_IP_ => Key::RespIpBytes,
            _ => return None,
        },
        _ => return None,
    })
}

/// The reference for [`key`]: a plain match on the byte strings.
#[cfg(test)]
fn key_reference(k: &[u8]) -> Option<Key> {
    Some(match k {
        b"ts" => Key::Ts,
        b"id.orig_h" => Key::OrigH,
        b"id.orig_p" => Key::OrigP,
        b"id.resp_h" => Key::RespH,
        b"id.resp_p" => Key::RespP,
        b"proto" => Key::Proto,
        b"duration" => Key::Duration,
        b"orig_pkts" => Key::OrigPkts,
        b"orig_ip_bytes" => Key::OrigIpBytes,
        b"resp_pkts" => Key::RespPkts,
        b"resp_ip_bytes" => Key::RespIpBytes,
        _ => return None,
    })
}

/// Reads the fields of one line (already trimmed) into `out` (which starts as
/// `ConnFields::default()`); `false` when the line must take the `serde_json` path
/// (`out` then holds nothing meaningful). `order` is the key order seen so far
/// ([`KeyOrder`]), which only speeds the scan up: the result is the same whatever it
/// holds.
pub(crate) fn scan_into<'l>(
    line: &'l [u8],
    order: &mut KeyOrder,
    out: &mut ConnFields<'l>,
) -> bool {
    if scan_compact_ordered(line, order, out).is_some() {
        return true;
    }
    match scan_general(line) {
        Some(c) => {
            *out = c;
            true
        }
        None => false,
    }
}

/// [`scan_into`] without a remembered key order (every key searched for).
#[cfg(test)]
pub(crate) fn scan(line: &[u8]) -> Option<ConnFields<'_>> {
    let mut c = ConnFields::default();
    scan_into(line, &mut KeyOrder::default(), &mut c).then_some(c)
}

/// [`scan_compact_ordered`] without a remembered key order.
#[cfg(test)]
fn scan_compact(line: &[u8]) -> Option<ConnFields<'_>> {
    let mut c = ConnFields::default();
    scan_compact_ordered(line, &mut KeyOrder::default(), &mut c).map(|()| c)
}

/// Zeek writes the keys of every line in the same order (leaving out the unset ones), so
/// the scanner remembers the last line's `"key":` byte sequences, in order, each with
/// what the key is ([`Key`] or skipped), and at each position of the next line first
/// compares the expected sequence with the line's bytes: one masked 16-byte compare
/// instead of a quote search and a key lookup.
///
/// **Architecture invariant:** a slot matches only when the line holds exactly its
/// `"key":` bytes, and a slot is only learnt from a key the scanner has read as a plain
/// string (no backslash, control or non-ASCII byte), so a match identifies the key as
/// surely as reading it would: the order changes the speed of the scan, never its result
/// (CI-1). A line whose order differs is still read, and leaves its own order behind: a
/// key further on (up to [`LOOKAHEAD`] slots: keys this line leaves out) drops the slots
/// skipped, a key not expected (an extra or swapped key) is searched for and inserted,
/// and slots past the line's last key are dropped at its end. At most [`MAX_SLOTS`]
/// slots; keys longer than [`MAX_KEY`] bytes are searched for on every line, never
/// learnt.
#[derive(Debug)]
pub(crate) struct KeyOrder {
    slots: Vec<Slot>,
}

impl Default for KeyOrder {
    /// An empty order, with room for a whole `conn.log` line's keys (one allocation per
    /// reader).
    fn default() -> Self {
        Self {
            slots: Vec::with_capacity(32),
        }
    }
}

/// Most slots a [`KeyOrder`] keeps (Zeek's `conn.log` has about 25 fields).
const MAX_SLOTS: usize = 64;
/// How many slots past the expected one a key is looked for before it is searched.
const LOOKAHEAD: usize = 8;
/// Longest `"key":` sequence a slot holds (two words; every known key fits).
const MAX_KEY: usize = 16;

/// One remembered `"key":` sequence.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The bytes as one little-endian number, zero past `len`.
    bytes: u128,
    /// All-ones over the first `len` bytes.
    mask: u128,
    len: usize,
    key: Option<Key>,
}

impl Slot {
    /// A slot for `quoted` (`"key":`), or `None` when it is longer than [`MAX_KEY`].
    fn new(quoted: &[u8], key: Option<Key>) -> Option<Self> {
        let mut bytes = [0u8; MAX_KEY];
        let mut mask = [0u8; MAX_KEY];
        bytes.get_mut(..quoted.len())?.copy_from_slice(quoted);
        mask.get_mut(..quoted.len())?.fill(0xff);
        Some(Self {
            bytes: u128::from_le_bytes(bytes),
            mask: u128::from_le_bytes(mask),
            len: quoted.len(),
            key,
        })
    }

    /// Whether `at` starts with this slot's bytes: one masked compare of sixteen bytes,
    /// or byte by byte within sixteen bytes of the line's end.
    fn matches(&self, at: &[u8]) -> bool {
        match at.first_chunk::<MAX_KEY>() {
            Some(head) => (u128::from_le_bytes(*head) ^ self.bytes) & self.mask == 0,
            None => {
                let Some(head) = at.get(..self.len) else {
                    return false;
                };
                let bytes = self.bytes.to_le_bytes();
                bytes.get(..self.len) == Some(head)
            }
        }
    }
}

impl KeyOrder {
    /// The slot matching `at`, expected at `next`: its length and key. A match further
    /// on (up to [`LOOKAHEAD`] slots: keys this line leaves out) drops the slots in
    /// between, so the order stays the last line's.
    #[inline]
    fn find(&mut self, at: &[u8], next: usize) -> Option<(usize, Option<Key>)> {
        let slot = self.slots.get(next)?;
        if slot.matches(at) {
            return Some((slot.len, slot.key));
        }
        self.find_ahead(at, next)
    }

    /// [`KeyOrder::find`] past the expected slot.
    #[cold]
    fn find_ahead(&mut self, at: &[u8], next: usize) -> Option<(usize, Option<Key>)> {
        let ahead = self.slots.get(next + 1..)?;
        let j = ahead.iter().take(LOOKAHEAD).position(|s| s.matches(at))?;
        let slot = *ahead.get(j)?;
        self.slots.drain(next..next + 1 + j);
        Some((slot.len, slot.key))
    }

    /// Remembers `quoted` (`"key":`, read from the line) at position `next`; returns the
    /// position after it.
    #[cold]
    fn learn(&mut self, next: usize, quoted: &[u8], key: Option<Key>) -> usize {
        if self.slots.len() >= MAX_SLOTS {
            return next;
        }
        match Slot::new(quoted, key) {
            Some(slot) => {
                let at = next.min(self.slots.len());
                self.slots.insert(at, slot);
                at + 1
            }
            None => next,
        }
    }

    /// The line ended at `next`: slots past it are keys this line left out.
    fn end(&mut self, next: usize) {
        self.slots.truncate(next);
    }

    /// The remembered `"key":` sequences, in order.
    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| {
                let bytes = s.bytes.to_le_bytes();
                String::from_utf8_lossy(bytes.get(..s.len).unwrap_or_default()).into_owned()
            })
            .collect()
    }
}

/// The position of the `"` that closes a plain string (no backslash, no control
/// character, nothing outside ASCII) starting at `from`; `None` when the string ends
/// otherwise or is not plain. Eight bytes at a time: [`first_maybe_special`] flags the
/// first byte that may end or interrupt the run, and that byte decides.
fn plain_string_end(line: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let (p, b) = match line.get(from..)?.first_chunk::<8>() {
            Some(chunk) => {
                let m = first_maybe_special(u64::from_le_bytes(*chunk));
                if m == 0 {
                    from += 8;
                    continue;
                }
                let p = from + (m.trailing_zeros() / 8) as usize;
                (p, *line.get(p)?)
            }
            None => {
                let tail = line.get(from..)?;
                let i = tail
                    .iter()
                    .position(|b| *b < 0x23 || *b == b'\\' || *b >= 0x80)?;
                (from + i, *tail.get(i)?)
            }
        };
        match b {
            b'"' => return Some(p),
            // Flagged but plain: go on after it.
            b' ' | b'!' => from = p + 1,
            _ => return None,
        }
    }
}

/// Flags (high bit) the first byte of `x` (little-endian) that is below 0x23 (control
/// characters, blank, `!`, `"`), equal to `\` or outside ASCII: a superset of the bytes
/// that end or interrupt a plain string run. Only the first flag is exact (a borrow from
/// a flagged byte may flag the bytes after it), which is all [`plain_string_end`] reads:
/// no byte before the first such byte borrows, so none is flagged.
fn first_maybe_special(x: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // b - 0x23 wraps (high bit) below 0x23; b itself has the high bit outside ASCII.
    let below_or_high = x.wrapping_sub(0x23 * ONES) | x;
    // y - 1 wraps where y = b ^ '\' is zero.
    let y = x ^ (u64::from(b'\\') * ONES);
    let backslash = y.wrapping_sub(ONES) & !y;
    (below_or_high | backslash) & HI
}

/// The common case: a compact line (no blank between tokens) whose strings are plain
/// ([`plain_string_end`]), its keys matched against `order` ([`KeyOrder`]) or searched.
/// Anything else is left to [`scan_general`].
fn scan_compact_ordered<'l>(
    line: &'l [u8],
    order: &mut KeyOrder,
    c: &mut ConnFields<'l>,
) -> Option<()> {
    if line.first() != Some(&b'{') {
        return None;
    }
    let mut seen = 0u16;
    let mut p = 1; // the next key's opening quote
    if line.get(p) == Some(&b'}') {
        return (line.len() == 2).then_some(());
    }
    let mut next = 0; // the slot expected at `p`
    loop {
        let at = line.get(p..)?;
        let (k, v) = match order.find(at, next) {
            Some((len, k)) => {
                next += 1;
                (k, p + len)
            }
            None => {
                if at.first() != Some(&b'"') {
                    return None;
                }
                let close = plain_string_end(line, p + 1)?;
                if line.get(close + 1) != Some(&b':') {
                    return None;
                }
                let k = key(line.get(p + 1..close)?);
                next = order.learn(next, line.get(p..close + 2)?, k);
                (k, close + 2)
            }
        };
        let end = match k {
            None => skip_value(line, v)?,
            Some(k) => {
                mark(&mut seen, k)?;
                match k {
                    Key::Ts => opt_f64(line, v, &mut c.ts)?,
                    Key::Duration => opt_f64(line, v, &mut c.duration)?,
                    Key::OrigP => opt_u64(line, v, &mut c.orig_p)?,
                    Key::RespP => opt_u64(line, v, &mut c.resp_p)?,
                    Key::OrigPkts => opt_u64(line, v, &mut c.orig_pkts)?,
                    Key::OrigIpBytes => opt_u64(line, v, &mut c.orig_ip_bytes)?,
                    Key::RespPkts => opt_u64(line, v, &mut c.resp_pkts)?,
                    Key::RespIpBytes => opt_u64(line, v, &mut c.resp_ip_bytes)?,
                    Key::OrigH => opt_plain_str(line, v, &mut c.orig_h)?,
                    Key::RespH => opt_plain_str(line, v, &mut c.resp_h)?,
                    Key::Proto => opt_plain_str(line, v, &mut c.proto)?,
                }
            }
        };
        match line.get(end)? {
            b',' => p = end + 1,
            b'}' if end + 1 == line.len() => {
                order.end(next);
                return Some(());
            }
            _ => return None,
        }
    }
}

/// Whether `line` holds `word` at `at`; the position after it.
fn literal_at(line: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    let end = at + word.len();
    (line.get(at..end)? == word).then_some(end)
}

/// Steps over a scalar value at `at` whose strings are plain; the position after it.
fn skip_value(line: &[u8], at: usize) -> Option<usize> {
    match line.get(at)? {
        b'"' => Some(plain_string_end(line, at + 1)? + 1),
        b't' => literal_at(line, at, b"true"),
        b'f' => literal_at(line, at, b"false"),
        b'n' => literal_at(line, at, b"null"),
        _ => {
            // Most skipped numbers are plain integers (byte counts): no leading zero, no
            // fraction or exponent after them. Anything else is stepped over by the
            // general number grammar.
            let rest = line.get(at..)?;
            let (_, n) = leading_digits(rest);
            if n > 0
                && (n == 1 || rest.first() != Some(&b'0'))
                && !matches!(rest.get(n), Some(b'.' | b'e' | b'E'))
            {
                return Some(at + n);
            }
            let mut s = Scanner { b: line, at };
            s.skip_number()?;
            Some(s.at)
        }
    }
}

/// The value of eight digits 0–9 held one per byte of `x`, the first (least
/// significant) byte the most significant digit: three multiplications instead of
/// eight (D. Lemire, "Quickly parsing eight digits", 2022).
fn eight_digits(x: u64) -> u64 {
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((x >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
}

/// Powers of ten up to 1e30, as integers.
#[allow(clippy::indexing_slicing)] // const evaluation, within the array
const POW10_U128: [u128; 31] = {
    let mut t = [1u128; 31];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The value and count of the ASCII digits `b` starts with, eight bytes at a time, for
/// the long numbers of `ts` and `duration` (the value is exact up to 38 digits and
/// wraps past them; callers decline those).
fn wide_digits(b: &[u8]) -> (u128, usize) {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut v = 0u128;
    let mut n = 0;
    let mut rest = b;
    while let Some(chunk) = rest.first_chunk::<8>() {
        let w = u64::from_le_bytes(*chunk);
        let x = w.wrapping_sub(ZEROS);
        // High bit set in a byte below '0' (borrow), above '9' (+0x46 reaches 0x80) or
        // outside ASCII. A borrow or carry only runs into later bytes, so the first
        // flagged byte is exactly the first non-digit.
        let non_digit = (x | w.wrapping_add(0x4646_4646_4646_4646) | w) & HI;
        let k = if non_digit == 0 {
            8
        } else {
            (non_digit.trailing_zeros() / 8) as usize
        };
        if k == 0 {
            return (v, n);
        }
        // The k digits moved to the top bytes: zeros in front leave the value alone.
        let digits = eight_digits(x << (64 - 8 * k));
        let scale: u64 = [
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
        ]
        .get(k)
        .copied()
        .unwrap_or_default();
        v = v
            .wrapping_mul(u128::from(scale))
            .wrapping_add(u128::from(digits));
        n += k;
        if k < 8 {
            return (v, n);
        }
        rest = rest.get(8..).unwrap_or_default();
    }
    for &c in rest {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u128::from(d));
        n += 1;
    }
    (v, n)
}

/// The value and count of the ASCII digits `b` starts with, in one pass (the value
/// wraps past 19 digits; callers decline those).
fn leading_digits(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    let mut n = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        n += 1;
    }
    (v, n)
}

/// A JSON integer of 1 to 19 digits without a leading zero at `rest`'s start, as
/// `(value, digits)`.
fn json_uint(rest: &[u8]) -> Option<(u64, usize)> {
    let (v, n) = leading_digits(rest);
    if n == 0 || n > 19 || (n > 1 && rest.first() == Some(&b'0')) {
        return None;
    }
    Some((v, n))
}

/// A `u64` field at `at` into `slot` ([`Scanner::opt_u64`] in one pass); the position
/// after it.
fn opt_u64(line: &[u8], at: usize, slot: &mut Option<u64>) -> Option<usize> {
    let rest = line.get(at..)?;
    if rest.first() == Some(&b'n') {
        return literal_at(line, at, b"null");
    }
    let (v, n) = json_uint(rest)?;
    if matches!(rest.get(n), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    *slot = Some(v);
    Some(at + n)
}

/// An `f64` field at `at` into `slot` ([`Scanner::opt_f64`] in one pass: the same
/// conversion as `serde_json`); the position after it.
#[allow(clippy::cast_precision_loss)] // exactly serde_json's conversion
fn opt_f64(line: &[u8], at: usize, slot: &mut Option<f64>) -> Option<usize> {
    let rest = line.get(at..)?;
    if rest.first() == Some(&b'n') {
        return literal_at(line, at, b"null");
    }
    let (int, n) = wide_digits(rest);
    if n == 0 || n > 19 || (n > 1 && rest.first() == Some(&b'0')) {
        return None;
    }
    let (f, end) = if rest.get(n) == Some(&b'.') {
        let (frac, k) = wide_digits(rest.get(n + 1..)?);
        if k == 0 || k >= POW10.len() {
            return None;
        }
        // serde_json adds digit after digit to a u64 significand and takes another path
        // once it would overflow; the partial sums only grow, so that happens exactly
        // when the whole exceeds u64::MAX. Both parts are exact (at most 19 and 30
        // digits); a u128 overflow means more than 38 digits from a non-zero integer
        // part, far past u64::MAX too.
        let whole = int.checked_mul(*POW10_U128.get(k)?)?.checked_add(frac)?;
        let significand = u64::try_from(whole).ok()?;
        (significand as f64 / *POW10.get(k)?, n + 1 + k)
    } else {
        (int as f64, n)
    };
    if matches!(rest.get(end), Some(b'e' | b'E')) {
        return None;
    }
    *slot = Some(f);
    Some(at + end)
}

/// A string field at `at` into `slot`: `null` or a plain string; the position after it.
fn opt_plain_str<'l>(line: &'l [u8], at: usize, slot: &mut Option<&'l [u8]>) -> Option<usize> {
    match line.get(at)? {
        b'"' => {
            let close = plain_string_end(line, at + 1)?;
            *slot = Some(line.get(at + 1..close)?);
            Some(close + 1)
        }
        b'n' => literal_at(line, at, b"null"),
        _ => None,
    }
}

/// Marks a known key as seen; `None` on a repeat (serde: "duplicate field").
fn mark(seen: &mut u16, k: Key) -> Option<()> {
    let bit = 1u16 << (k as u16);
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// The general scanner: blanks between tokens, simple escapes in skipped strings.
fn scan_general(line: &[u8]) -> Option<ConnFields<'_>> {
    let mut s = Scanner { b: line, at: 0 };
    let mut c = ConnFields::default();
    let mut seen = 0u16;
    s.ws();
    s.expect(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.at += 1;
    } else {
        loop {
            s.expect(b'"')?;
            let k = s.string(false)?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match key(k) {
                None => s.skip_value()?,
                Some(k) => {
                    let bit = 1u16 << (k as u16);
                    if seen & bit != 0 {
                        return None; // serde: "duplicate field"
                    }
                    seen |= bit;
                    match k {
                        Key::Ts => c.ts = s.opt_f64()?,
                        Key::OrigH => c.orig_h = s.opt_str()?,
                        Key::OrigP => c.orig_p = s.opt_u64()?,
                        Key::RespH => c.resp_h = s.opt_str()?,
                        Key::RespP => c.resp_p = s.opt_u64()?,
                        Key::Proto => c.proto = s.opt_str()?,
                        Key::Duration => c.duration = s.opt_f64()?,
                        Key::OrigPkts => c.orig_pkts = s.opt_u64()?,
                        Key::OrigIpBytes => c.orig_ip_bytes = s.opt_u64()?,
                        Key::RespPkts => c.resp_pkts = s.opt_u64()?,
                        Key::RespIpBytes => c.resp_ip_bytes = s.opt_u64()?,
                    }
                }
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.at == line.len()).then_some(c)
}

struct Scanner<'a> {
    b: &'a [u8],
    at: usize,
}

/// High bit set in each byte of `x` that is zero (exact: no borrow between bytes).
fn zero_bytes(x: u64) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LO7).wrapping_add(LO7)) | x | LO7)
}

/// High bit set in each byte that ends or interrupts a plain string run: `"`, `\`, a
/// control character (< 0x20) or a non-ASCII byte.
fn special_bytes(x: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let quote = zero_bytes(x ^ 0x2222_2222_2222_2222);
    let backslash = zero_bytes(x ^ 0x5c5c_5c5c_5c5c_5c5c);
    // (b & 0x7f) + 0x60 has its high bit clear exactly when (b & 0x7f) < 0x20.
    let control = !((x & LO7).wrapping_add(0x6060_6060_6060_6060)) & HI;
    quote | backslash | control | (x & HI)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.b.get(self.at..end)? == word).then_some(())?;
        self.at = end;
        Some(())
    }

    /// JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The body of a string whose opening quote was just read, up to (and past) its
    /// closing quote. With `escapes`, the simple escapes (`\"`, `\\`, `\/`, `\b`, `\f`,
    /// `\n`, `\r`, `\t`) are stepped over and the raw body returned (for values that are
    /// skipped); without, any backslash declines.
    fn string(&mut self, escapes: bool) -> Option<&'a [u8]> {
        let start = self.at;
        loop {
            // Eight bytes at a time up to the next special byte.
            let rest = self.b.get(self.at..)?;
            let (chunks, _) = rest.as_chunks::<8>();
            let mut stop = None;
            for (i, chunk) in chunks.iter().enumerate() {
                let m = special_bytes(u64::from_le_bytes(*chunk));
                if m != 0 {
                    stop = Some(i * 8 + (m.trailing_zeros() / 8) as usize);
                    break;
                }
            }
            let p = match stop {
                Some(p) => p,
                None => {
                    let from = chunks.len() * 8;
                    from + rest
                        .get(from..)?
                        .iter()
                        .position(|b| matches!(b, b'"' | b'\\' | 0..0x20 | 0x80..))?
                }
            };
            self.at += p;
            match self.next()? {
                b'"' => return self.b.get(start..self.at - 1),
                b'\\' if escapes => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// Steps over one scalar value (string, number, `true`, `false`, `null`).
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string(true).map(|_| ())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            (self.digits() > 0).then_some(())?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    /// Steps over a run of digits; returns how many.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// `null` → `None`; otherwise the digits of a JSON integer as `(value, digits)`,
    /// declining on more than 19 digits and on leading zeros.
    fn unsigned(&mut self) -> Option<(u64, usize)> {
        let (v, n) = json_uint(self.b.get(self.at..)?)?;
        self.at += n;
        Some((v, n))
    }

    /// A `u64` field: `null` or a plain integer; anything else (sign, fraction,
    /// exponent, which `serde_json` refuses or reads differently) declines.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let (v, _) = self.unsigned()?;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(Some(v))
    }

    /// An `f64` field: `null`, an integer or a decimal without exponent, converted as
    /// `serde_json` does: the digits as one integer significand, cast to `f64`, divided
    /// once by the power of ten of the fraction's length.
    #[allow(clippy::cast_precision_loss)] // exactly serde_json's conversion
    fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let (int, _) = self.unsigned()?;
        let mut significand = int;
        let mut frac_digits = 0usize;
        if self.peek() == Some(b'.') {
            self.at += 1;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                significand = significand
                    .checked_mul(10)?
                    .checked_add(u64::from(c - b'0'))?;
                frac_digits += 1;
                self.at += 1;
            }
            // Fraction digits add to the integer significand exactly as in serde_json,
            // which takes another path once it would overflow (declined above).
            if frac_digits == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        let f = significand as f64;
        Some(Some(if frac_digits == 0 {
            f
        } else {
            f / *POW10.get(frac_digits)?
        }))
    }

    /// A borrowed string field: `null` or a string without escapes (`serde_json` cannot
    /// borrow an escaped string, so such a line is refused on its path).
    fn opt_str(&mut self) -> Option<Option<&'a [u8]>> {
        match self.next()? {
            b'n' => {
                self.at -= 1;
                self.literal(b"null")?;
                Some(None)
            }
            b'"' => Some(Some(self.string(false)?)),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::zeek::ConnJson;
    use proptest::prelude::*;

    #[test]
    fn key_words_match_the_key_names() {
        for k in [
            "ts",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "duration",
            "orig_pkts",
            "orig_ip_bytes",
            "resp_pkts",
            "resp_ip_bytes",
            "uid",
            "history",
            "orig_bytes",
            "id.orig_x",
            "resp_ip_bytez",
            "orig_pktz",
            "durationx",
            "t",
            "",
            "service",
            "conn_state",
            "missed_bytes",
            "tunnel_parents",
        ] {
            assert_eq!(key(k.as_bytes()), key_reference(k.as_bytes()), "{k}");
        }
        assert_eq!(key(b"id.resp_h"), Some(Key::RespH));
    }

    /// What the reference path makes of a line: `serde_json`'s `ConnJson`, or `None`.
    fn reference(line: &[u8]) -> Option<ConnFields<'_>> {
        serde_json::from_slice::<ConnJson<'_>>(line)
            .ok()
            .map(Into::into)
    }

    /// The fast path either declines or agrees with serde_json, bit for bit on floats.
    fn agrees(line: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = scan(line) {
            let slow = reference(line);
            prop_assert!(
                slow.is_some(),
                "{} accepted, serde refuses",
                String::from_utf8_lossy(line)
            );
            let slow = slow.unwrap();
            prop_assert_eq!(fast.ts.map(f64::to_bits), slow.ts.map(f64::to_bits));
            prop_assert_eq!(
                fast.duration.map(f64::to_bits),
                slow.duration.map(f64::to_bits)
            );
            prop_assert_eq!(fast, slow);
        }
        Ok(())
    }

    /// Keys for [`any_key_order_reads_the_same`], each with a value of its type: the
    /// known ones, prefixes and extensions of them, and one longer than a slot.
    const KEY_POOL: [(&str, &str); 12] = [
        ("ts", "1664462456.755299"),
        ("t", "true"),
        ("tsx", "2"),
        ("id.orig_h", r#""10.0.0.1""#),
        ("id.orig_hh", r#""x""#),
        ("id.orig_p", "40042"),
        ("proto", r#""udp""#),
        ("duration", "0.012166976928710938"),
        ("orig_pkts", "0"),
        ("resp_ip_bytes", "139"),
        ("resp_ip_bytes_", "null"),
        ("a_key_longer_than_sixteen", r#""a b""#),
    ];

    /// Values for [`any_key_order_reads_the_same`]: of every kind, right or wrong for
    /// the key they land on.
    const VALUES: [&str; 8] = [
        "1",
        "1664462456.755299",
        "0.012166976928710938",
        r#""10.0.0.1""#,
        r#""tcp""#,
        "null",
        "true",
        r#""a b""#,
    ];

    const LINE: &str = r#"{"ts":1664462456.755299,"uid":"C5xhsO3uGtOfyrBlHh","id.orig_h":"172.16.1.11","id.orig_p":40042,"id.resp_h":"8.8.8.8","id.resp_p":53,"proto":"udp","service":"dns","duration":0.012166976928710938,"orig_bytes":0,"resp_bytes":111,"conn_state":"SHR","local_orig":true,"local_resp":false,"missed_bytes":0,"history":"Cd","orig_pkts":0,"orig_ip_bytes":0,"resp_pkts":1,"resp_ip_bytes":139}"#;

    #[test]
    fn reads_a_zeek_line_as_serde_does() {
        let fast = scan_compact(LINE.as_bytes()).expect("a plain Zeek line takes the compact path");
        assert_eq!(scan_general(LINE.as_bytes()), Some(fast.clone()));
        assert_eq!(fast.orig_h, Some(&b"172.16.1.11"[..]));
        assert_eq!(fast.resp_ip_bytes, Some(139));
        assert_eq!(
            fast.duration.map(f64::to_bits),
            reference(LINE.as_bytes())
                .unwrap()
                .duration
                .map(f64::to_bits)
        );
        agrees(LINE.as_bytes()).unwrap();
    }

    #[test]
    fn keys_in_any_order_escapes_and_null() {
        let line = br#"{ "proto" : "tcp", "note":"a \"quoted\" \\ value\t", "ts" : 7, "id.orig_h":null, "x":-1.5e3, "y":[1] }"#;
        // A nested value: declined, whatever serde says.
        assert!(scan(line).is_none());
        let line = br#"{ "proto" : "tcp", "note":"a \"quoted\" \\ value\t", "ts" : 7, "id.orig_h":null, "x":-1.5e3 }"#;
        let c = scan(line).expect("flat line");
        assert_eq!(
            (c.proto, c.ts, c.orig_h),
            (Some(&b"tcp"[..]), Some(7.0), None)
        );
        agrees(line).unwrap();
    }

    #[test]
    fn declines_what_serde_refuses_or_reads_otherwise() {
        for bad in [
            &br#"{"ts":1,"ts":2}"#[..],          // duplicate field
            br#"{"id.orig_h":"a\u0041"}"#,       // \u escape
            br#"{"id.orig_h":"a\nb"}"#,          // escape in a kept string
            br#"{"orig_pkts":1.0}"#,             // float for an integer
            br#"{"orig_pkts":-1}"#,              // negative
            br#"{"ts":1e3}"#,                    // exponent
            br#"{"ts":01}"#,                     // leading zero
            br#"{"ts":1.}"#,                     // no fraction digits
            br#"{"ts":12345678901234567890.5}"#, // 22 digits
            b"{\"x\":\"caf\xc3\xa9\"}",          // non-ASCII
            b"{\"x\":\"a\x01\"}",                // control character
            br#"{"x":1} x"#,                     // trailing bytes
            br#"{"x":1,}"#,                      // trailing comma
            br#"{"proto":6}"#,                   // number for a string
            br#"[1]"#,
        ] {
            assert!(scan(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn empty_object_reads_as_no_fields() {
        assert_eq!(scan(b"{}"), Some(ConnFields::default()));
        agrees(b"{ }").unwrap();
    }

    /// Scans `lines` in turn with one remembered key order; each line must give what a
    /// scan without any remembered order gives, and agree with serde_json.
    fn ordered_agrees(lines: &[&[u8]]) -> Result<KeyOrder, TestCaseError> {
        let mut order = KeyOrder::default();
        for line in lines {
            let mut c = ConnFields::default();
            let ordered = scan_into(line, &mut order, &mut c).then_some(c);
            prop_assert_eq!(
                ordered.clone(),
                scan(line),
                "{}",
                String::from_utf8_lossy(line)
            );
            agrees(line)?;
            if let Some(c) = ordered {
                prop_assert_eq!(Some(c), reference(line));
            }
        }
        Ok(order)
    }

    #[test]
    fn key_order_follows_the_last_line() {
        let full = br#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"tcp","duration":0.25,"orig_pkts":3}"#;
        // Zeek leaves unset fields out: `duration` missing.
        let missing = br#"{"ts":2.5,"uid":"C2","id.orig_h":"10.0.0.3","id.orig_p":4,"id.resp_h":"10.0.0.4","id.resp_p":5,"proto":"udp","orig_pkts":6}"#;
        // An extra key, and keys swapped.
        let extra = br#"{"ts":3.5,"uid":"C3","id.orig_h":"10.0.0.5","id.resp_h":"10.0.0.6","id.orig_p":7,"id.resp_p":8,"proto":"udp","service":"dns","orig_pkts":9}"#;
        let order = ordered_agrees(&[full, full, missing, extra, full, missing]).unwrap();
        // The order is the last line's.
        assert_eq!(
            order.keys(),
            [
                r#""ts":"#,
                r#""uid":"#,
                r#""id.orig_h":"#,
                r#""id.orig_p":"#,
                r#""id.resp_h":"#,
                r#""id.resp_p":"#,
                r#""proto":"#,
                r#""orig_pkts":"#
            ]
        );
        let mut order = KeyOrder::default();
        let mut c = ConnFields::default();
        assert!(scan_into(extra, &mut order, &mut c));
        assert_eq!((c.orig_p, c.resp_p, c.ts), (Some(7), Some(8), Some(3.5)));
        assert_eq!(
            order.keys().get(3).map(String::as_str),
            Some(r#""id.resp_h":"#)
        );
    }

    #[test]
    fn remembered_keys_never_stand_for_other_keys() {
        // Keys that a prefix compare would confuse, keys past sixteen bytes (never
        // remembered), a repeated key after the order was learnt, a key at the very end
        // of the line (the byte-by-byte compare).
        let lines: [&[u8]; 9] = [
            br#"{"ts":1,"tsx":2,"id.orig_h":"1.1.1.1","id.orig_hx":"x","resp_ip_bytes":5}"#,
            br#"{"tsx":2,"ts":1,"id.orig_hx":"x","id.orig_h":"1.1.1.1","resp_ip_bytes":5}"#,
            br#"{"t":1,"ts":9,"id.orig_h":"2.2.2.2","a_very_long_key_name":true,"resp_ip_bytes":6}"#,
            br#"{"t":1,"ts":9,"id.orig_h":"2.2.2.2","a_very_long_key_name":true,"resp_ip_bytes":6}"#,
            br#"{"t":1,"ts":9,"ts":8}"#,
            br#"{"t":1,"ts":9,"id.orig_h":"3.3.3.3","id.orig_h":"3.3.3.3"}"#,
            br#"{"t":1,"ts":9}"#,
            br#"{"t":1,"tz":9}"#,
            br#"{"t":1,"ts":9,"proto":"tcp"}"#,
        ];
        ordered_agrees(&lines).unwrap();
        let mut order = KeyOrder::default();
        let mut c = ConnFields::default();
        for line in &lines[..4] {
            c = ConnFields::default();
            assert!(scan_into(line, &mut order, &mut c));
        }
        assert_eq!(
            (c.ts, c.orig_h, c.resp_ip_bytes),
            (Some(9.0), Some(&b"2.2.2.2"[..]), Some(6))
        );
        assert!(!order.keys().iter().any(|k| k.contains("a_very_long")));
        // A repeated known key is a duplicate field, whatever the order remembers.
        assert!(!scan_into(lines[4], &mut order, &mut ConnFields::default()));
        assert!(!scan_into(lines[5], &mut order, &mut ConnFields::default()));
    }

    #[test]
    fn plain_strings_and_skipped_numbers() {
        for line in [
            // Blanks and `!` are flagged by the word test but plain.
            &br#"{"history":"a b!c d e f g h i j","proto":"t p"}"#[..],
            br#"{"x":0,"y":10,"z":1.5,"w":-1,"v":2e3,"u":0.0}"#,
        ] {
            assert!(
                scan_compact(line).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
            agrees(line).unwrap();
        }
        for (line, fast) in [
            // An escape in a skipped string: the general scanner reads it.
            (&br#"{"history":"a\"b","ts":1}"#[..], false),
            (br#"{"x":01}"#, false),
            (br#"{"x":1.}"#, false),
            (br#"{"x":-}"#, false),
            (b"{\"x\":\"a\x7f\"}", true),
        ] {
            assert_eq!(
                scan_compact(line).is_some(),
                fast,
                "{}",
                String::from_utf8_lossy(line)
            );
            agrees(line).unwrap();
        }
    }

    /// The digits of `s` up to the first non-digit, one by one (wrapping like
    /// [`wide_digits`]).
    fn digits_reference(s: &[u8]) -> (u128, usize) {
        let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let v = s[..n].iter().fold(0u128, |v, c| {
            v.wrapping_mul(10).wrapping_add(u128::from(c - b'0'))
        });
        (v, n)
    }

    proptest! {
        /// The first flagged byte of a word is the first byte below 0x23, `\` or
        /// outside ASCII, whatever comes after it.
        #[test]
        fn first_flag_is_the_first_special_byte(bytes in proptest::array::uniform8(
            prop_oneof![4 => 0x23u8..0x7f, 1 => any::<u8>(), 1 => Just(b'\\')]
        )) {
            let m = first_maybe_special(u64::from_le_bytes(bytes));
            let first = bytes.iter().position(|&b| b < 0x23 || b == b'\\' || b >= 0x80);
            prop_assert_eq!((m != 0).then(|| (m.trailing_zeros() / 8) as usize), first);
        }

        /// Eight-at-a-time digit runs equal the byte-by-byte reading, whatever follows.
        #[test]
        fn wide_digits_match_a_byte_loop(s in proptest::collection::vec(
            prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()], 0..48)
        ) {
            prop_assert_eq!(wide_digits(&s), digits_reference(&s));
        }

        /// Long significands (20 and more digits: serde_json's overflow path) are
        /// declined or converted bit for bit as serde does.
        #[test]
        fn long_floats_decline_or_agree(int in "0|[1-9][0-9]{0,19}", frac in "[0-9]{1,32}") {
            let line = format!(r#"{{"ts":{int}.{frac},"duration":{int}}}"#);
            agrees(line.as_bytes())?;
            // Up to 19 digits in all, never declined.
            if int.len() + frac.len() <= 19 {
                prop_assert!(scan_compact(line.as_bytes()).is_some());
            }
        }

        /// Runs of lines built from a pool of keys (in random orders, with keys left
        /// out, repeated, sharing prefixes, longer than a slot; values mostly of the
        /// key's type) read the same with the remembered order as without it, and as
        /// serde_json reads them.
        #[test]
        fn any_key_order_reads_the_same(
            lines in proptest::collection::vec(
                (
                    prop_oneof![
                        3 => proptest::sample::subsequence(
                            (0..KEY_POOL.len()).collect::<Vec<_>>(), 0..=KEY_POOL.len()
                        ).prop_shuffle(),
                        1 => proptest::collection::vec(0..KEY_POOL.len(), 0..10),
                    ],
                    proptest::collection::vec(0..VALUES.len() * 4, KEY_POOL.len() + 10),
                ),
                1..8,
            )
        ) {
            let lines: Vec<Vec<u8>> = lines
                .iter()
                .map(|(keys, values)| {
                    let body: Vec<String> = keys
                        .iter()
                        .zip(values)
                        .map(|(&k, &v)| {
                            let (key, fitting) = KEY_POOL[k];
                            // Three times in four the value fits the key.
                            let value = VALUES.get(v).copied().unwrap_or(fitting);
                            format!(r#""{key}":{value}"#)
                        })
                        .collect();
                    format!("{{{}}}", body.join(",")).into_bytes()
                })
                .collect();
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            ordered_agrees(&refs)?;
        }

        /// Decimal `ts`/`duration` values of every length convert bit for bit as serde does.
        #[test]
        fn floats_convert_as_serde_does(int in 0u64..10_000_000_000, frac in "[0-9]{1,9}") {
            // Up to 19 significant digits, the fraction of `duration` behind leading zeros.
            let line = format!(r#"{{"ts":{int}.{frac},"duration":0.000{frac}{frac}}}"#);
            // Not vacuous: such lines are never declined.
            prop_assert!(scan(line.as_bytes()).is_some());
            agrees(line.as_bytes())?;
        }

        /// Mutated Zeek lines: the scanner never panics, and it declines or agrees (CI-1).
        #[test]
        fn mutated_lines_decline_or_agree(
            edits in proptest::collection::vec((0usize..LINE.len(), any::<u8>(), 0u8..3), 1..6)
        ) {
            let mut line = LINE.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at.min(line.len());
                match op {
                    0 if at < line.len() => line[at] = byte,
                    1 => line.insert(at, byte),
                    _ if at < line.len() => { line.remove(at); }
                    _ => {}
                }
            }
            agrees(&line)?;
        }
    }
}
