//! The one bounds-checked reader hostile bytes pass through (STYLE principle 3).
//!
//! Borrowed, never indexed: every read either returns the bytes asked for or an
//! [`Anomaly::Truncated`] naming the structure being read.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use crate::anomaly::Anomaly;

/// A cursor over borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes the next `n` bytes, or `None` (consuming nothing) if fewer remain.
    #[inline]
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    /// Takes the next `N` bytes as an array reference.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, tail) = self.buf.split_first_chunk::<N>()?;
        self.buf = tail;
        Some(head)
    }

    /// Takes the next `n` bytes, naming the structure if they are not there.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Anomaly> {
        self.take(n).ok_or(Anomaly::Truncated { what })
    }

    /// A reader over the next `len` bytes (a length-prefixed set or record), which are consumed.
    #[inline]
    pub fn sub(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, Anomaly> {
        self.bytes(len, what).map(Reader::new)
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Anomaly> {
        self.bytes(n, what).map(|_| ())
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Anomaly> {
        self.array::<1>()
            .map(|b| b[0])
            .ok_or(Anomaly::Truncated { what })
    }

    /// Reads a big-endian `u16`.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Anomaly> {
        self.array()
            .map(|b| u16::from_be_bytes(*b))
            .ok_or(Anomaly::Truncated { what })
    }

    /// Reads a big-endian `u32`.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Anomaly> {
        self.array()
            .map(|b| u32::from_be_bytes(*b))
            .ok_or(Anomaly::Truncated { what })
    }

    /// Reads a big-endian `u64`.
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Anomaly> {
        self.array()
            .map(|b| u64::from_be_bytes(*b))
            .ok_or(Anomaly::Truncated { what })
    }
}

/// Reads an unsigned big-endian integer of 0 to 8 bytes (IPFIX reduced-size encoding,
/// RFC 7011 §6.2). Longer inputs keep their last 8 bytes.
#[inline]
pub fn be_uint(bytes: &[u8]) -> u64 {
    match bytes.len() {
        1 => bytes.first().map_or(0, |b| u64::from(*b)),
        2 => bytes
            .first_chunk::<2>()
            .map_or(0, |b| u64::from(u16::from_be_bytes(*b))),
        4 => bytes
            .first_chunk::<4>()
            .map_or(0, |b| u64::from(u32::from_be_bytes(*b))),
        8 => bytes
            .first_chunk::<8>()
            .map_or(0, |b| u64::from_be_bytes(*b)),
        _ => bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_names_truncation() {
        let mut r = Reader::new(&[0, 10, 0, 0, 0, 1, 0xff]);
        assert_eq!(r.u16("version"), Ok(10));
        assert_eq!(r.u32("count"), Ok(1));
        assert_eq!(
            r.u16("ipfix set header"),
            Err(Anomaly::Truncated {
                what: "ipfix set header"
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.u8("last"), Ok(0xff));
        assert!(r.is_empty());
    }

    #[test]
    fn sub_consumes_exactly_its_length() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5]);
        let mut s = r.sub(3, "set").expect("3 bytes are there");
        assert_eq!(s.remaining(), 3);
        assert_eq!(s.u8("a"), Ok(1));
        assert_eq!(r.rest(), &[4, 5]);
        assert!(r.sub(3, "set").is_err());
    }

    #[test]
    fn be_uint_handles_reduced_sizes() {
        assert_eq!(be_uint(&[]), 0);
        assert_eq!(be_uint(&[0x12]), 0x12);
        assert_eq!(be_uint(&[0x12, 0x34, 0x56]), 0x12_3456);
        assert_eq!(be_uint(&[0, 0, 0, 0, 0, 0, 1, 0]), 256);
    }
}
