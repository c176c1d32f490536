//! Crypto-PAn: prefix-preserving pseudonymisation of IPv4 and IPv6 addresses
//! (Xu, Fan, Ammar, Moon, "Prefix-Preserving IP Address Anonymization", ICNP 2002), on
//! AES-128 (REQUIREMENTS CI-4; DESIGN invariant 2).
//!
//! # What
//! Bit `i` of the pseudonym is bit `i` of the address XOR the first bit of
//! `AES_K(prefix_i(address) ‖ pad[i..])`: two addresses that share a `k`-bit prefix get
//! pseudonyms that share exactly a `k`-bit prefix, and the mapping is a bijection (so it
//! can be inverted by whoever holds the key — see [`CryptoPan::deanonymise`]).
//!
//! The 32-byte key is laid out as in the reference C++ implementation (and `yacryptopan`,
//! `nfanon`, Yawning's Go package): bytes 0–15 are the AES-128 key, bytes 16–31 the
//! padding key, encrypted once with the AES key to form the 128-bit pad. IPv4 is the
//! 128-bit algorithm on the address placed in the top 32 bits, so one pad and one
//! first-16-bit table serve both families, and the outputs are bit-exact with those
//! implementations (`tests/cryptopan_oracle.rs` checks against `yacryptopan`;
//! `tests/cryptopan.rs` against the reference distribution's sample trace).
//!
//! # Why our own
//! No maintained Rust crate implements Crypto-PAn (CRATES.md, row "Crypto-PAn"), so this
//! module builds it on the RustCrypto `aes` crate, which picks AES-NI / VAES at run time.
//!
//! # Speed
//! A pseudonym needs one AES block per address bit (32 for IPv4, 128 for IPv6), but the
//! blocks of one address are independent, so they are encrypted together through the
//! backend's parallel path (64 blocks per call with VAES-512; the default tail path of
//! the `cipher` crate would encrypt them one at a time). On top of that:
//! - [`CryptoPan`] precomputes the first 16 bits for all 65,536 16-bit prefixes at
//!   construction (65,535 blocks, about a millisecond), shared by IPv4 and IPv6;
//! - [`Pseudonymiser`] (one per thread) adds a direct-mapped cache of the first 24 bits of
//!   IPv4 and the first 64 bits of IPv6 (subscriber addresses cluster in /24s and /64s),
//!   and pseudonymises whole slices so that blocks of many addresses fill each parallel
//!   call. Figures: `docs/benchmarks/cryptopan.md`.
//!
//! # Invariants
//! Pure: no IO, no clock, no allocation per address in the batch path. Keys are zeroised
//! on drop ([`CryptoPanKey`], the pad, the table, the caches; the AES round keys through
//! the `aes` crate's `zeroize` feature), and no `Debug` output shows key material.
//! Re-identification ([`CryptoPan::deanonymise`]) needs a [`ReidentificationApproval`],
//! a value the sensor constructs only after appending the approval to its ledger (CI-5,
//! STYLE principle 5).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes::Aes128;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Array, Block, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser,
    KeyInit, ParBlocks,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

type AesBlock = Block<Aes128>;

/// The 32-byte Crypto-PAn key: AES-128 key, then padding key (reference layout).
///
/// Zeroised on drop; `Debug` prints no key material.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CryptoPanKey {
    bytes: [u8; 32],
}

impl CryptoPanKey {
    /// A key from its 32 bytes (bytes 0–15 AES key, 16–31 padding key).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// A key from 64 hexadecimal digits (the `--key-hex` form of `mamori pseudonymise`).
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(KeyError::Length { digits: hex.len() });
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().copied().and_then(hex_digit),
                pair.get(1).copied().and_then(hex_digit),
            ) else {
                bytes.zeroize();
                return Err(KeyError::NotHex);
            };
            *byte = hi << 4 | lo;
        }
        Ok(Self { bytes })
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for CryptoPanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CryptoPanKey(<redacted>)")
    }
}

/// A Crypto-PAn key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 hex digits.
    #[error(
        "Crypto-PAn key must be 64 hex digits (32 bytes: AES key then padding key), got {digits}"
    )]
    Length {
        /// Digits found.
        digits: usize,
    },
    /// A character is not a hex digit.
    #[error("Crypto-PAn key must be hexadecimal digits only (0-9, a-f)")]
    NotHex,
}

/// Proof that a re-identification was approved and recorded.
///
/// The sensor constructs this only after its ledger accepted the approval entry
/// (`mamori sensor reidentify`): `flow` is pure and cannot see the ledger, so the type
/// carries the reference and the ledger index for the caller's audit trail, and its
/// existence at a call site is the rule "no re-identification without a ledger entry"
/// (CI-5). Not `Clone`: one receipt, one use site.
#[derive(Debug, PartialEq, Eq)]
pub struct ReidentificationApproval {
    approval_reference: String,
    ledger_index: u64,
}

impl ReidentificationApproval {
    /// The receipt for approval `approval_reference`, recorded at `ledger_index`.
    /// Call only with the index the ledger append returned.
    pub fn recorded(approval_reference: impl Into<String>, ledger_index: u64) -> Self {
        Self {
            approval_reference: approval_reference.into(),
            ledger_index,
        }
    }

    /// The approval's reference (case or warrant number).
    pub fn approval_reference(&self) -> &str {
        &self.approval_reference
    }

    /// The ledger index of the recorded approval.
    pub fn ledger_index(&self) -> u64 {
        self.ledger_index
    }
}

/// Bits precomputed for every 16-bit prefix.
const TABLE_BITS: u32 = 16;

/// The Crypto-PAn function for one key: immutable, `Sync`, shareable between threads.
pub struct CryptoPan {
    cipher: Aes128,
    pad: u128,
    /// `otp16[p]`: the first 16 pseudonym flip bits of every address whose top 16 bits are
    /// `p` (most significant bit = address bit 0).
    otp16: Box<[u16]>,
}

impl fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CryptoPan(<key redacted>)")
    }
}

impl Drop for CryptoPan {
    fn drop(&mut self) {
        self.pad.zeroize();
        self.otp16.zeroize();
    }
}

/// Encrypts a slice of blocks through the backend's parallel path, padding the tail into
/// one parallel call instead of the one-block-at-a-time default.
struct ParEncrypt<'a> {
    blocks: &'a mut [AesBlock],
}

impl BlockSizeUser for ParEncrypt<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for ParEncrypt<'_> {
    // Inlined into the backend's `#[target_feature]` entry point, so the backend's
    // intrinsics are compiled with AES-NI/VAES enabled rather than called out of line.
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let n = B::ParBlocksSize::USIZE;
        let mut par = ParBlocks::<B>::default();
        for chunk in self.blocks.chunks_mut(n.max(1)) {
            if let Ok(full) = <&mut ParBlocks<B>>::try_from(&mut *chunk) {
                backend.encrypt_par_blocks(full.into());
            } else if chunk.len() <= 2 {
                for block in chunk.iter_mut() {
                    backend.encrypt_block(block.into());
                }
            } else {
                let len = chunk.len();
                if let Some(head) = par.get_mut(..len) {
                    head.copy_from_slice(chunk);
                }
                backend.encrypt_par_blocks((&mut par).into());
                if let Some(head) = par.get(..len) {
                    chunk.copy_from_slice(head);
                }
            }
        }
    }
}

fn zeroize_blocks(blocks: &mut [AesBlock]) {
    for block in blocks {
        block.as_mut_slice().zeroize();
    }
}

#[inline]
fn prefix_mask(bits: u32) -> u128 {
    // bits in 0..=128
    u128::MAX.checked_shl(128 - bits).unwrap_or(0)
}

/// The first bit of an encrypted block: the flip bit it stands for.
#[inline]
fn flip_bit(block: &AesBlock) -> u128 {
    u128::from(block.first().copied().unwrap_or(0) >> 7)
}

impl CryptoPan {
    /// The Crypto-PAn function of `key`: derives the pad and precomputes the first 16 bits.
    pub fn new(key: &CryptoPanKey) -> Self {
        let (aes_key, pad_key) = key.bytes.split_at(16);
        let mut aes_key_arr = Array::<u8, U16>::default();
        aes_key_arr.copy_from_slice(aes_key);
        let cipher = Aes128::new(&aes_key_arr);
        aes_key_arr.zeroize();
        let mut pad_block = AesBlock::default();
        pad_block.copy_from_slice(pad_key);
        cipher.encrypt_block(&mut pad_block);
        let mut pad_bytes = [0u8; 16];
        pad_bytes.copy_from_slice(&pad_block);
        pad_block.zeroize();
        let pad = u128::from_be_bytes(pad_bytes);
        pad_bytes.zeroize();
        let mut pan = Self {
            cipher,
            pad,
            otp16: Box::default(),
        };
        pan.otp16 = pan.build_table();
        pan
    }

    /// The AES input for the flip bit at `pos`: the address's first `pos` bits, then the
    /// pad's remaining bits.
    #[inline(always)]
    fn input_block(&self, ext: u128, pos: u32) -> AesBlock {
        // pos < 128; pos == 0 is the pad itself.
        let keep_pad = u128::MAX >> pos;
        AesBlock::from((self.pad ^ ((ext ^ self.pad) & !keep_pad)).to_be_bytes())
    }

    fn encrypt_blocks(&self, blocks: &mut [AesBlock]) {
        self.cipher.encrypt_with_backend(ParEncrypt { blocks });
    }

    fn build_table(&self) -> Box<[u16]> {
        // The flip bit at position k depends on the first k bits only: one block per
        // prefix of length 0..16, 65,535 blocks in all.
        let mut blocks = Vec::with_capacity((1 << TABLE_BITS) - 1);
        for k in 0..TABLE_BITS {
            for p in 0u128..(1u128 << k) {
                let ext = if k == 0 { 0 } else { p << (128 - k) };
                blocks.push(self.input_block(ext, k));
            }
        }
        self.encrypt_blocks(&mut blocks);
        let mut table = vec![0u16; 1 << TABLE_BITS].into_boxed_slice();
        for (p, slot) in table.iter_mut().enumerate() {
            let mut otp = 0u16;
            for k in 0..TABLE_BITS {
                // prefixes of length k start at index 2^k - 1
                let idx = ((1usize << k) - 1) + (p >> (TABLE_BITS - k));
                let bit = blocks
                    .get(idx)
                    .map_or(0, |b| b.first().copied().unwrap_or(0) >> 7);
                otp |= u16::from(bit) << (TABLE_BITS - 1 - k);
            }
            *slot = otp;
        }
        zeroize_blocks(&mut blocks);
        table
    }

    #[inline]
    fn table_otp(&self, ext: u128) -> u128 {
        let idx = (ext >> (128 - TABLE_BITS)) as usize;
        u128::from(self.otp16.get(idx).copied().unwrap_or(0)) << (128 - TABLE_BITS)
    }

    /// Flip bits for positions `from..to` of `ext`, by encrypting the blocks together.
    fn otp_range(&self, ext: u128, from: u32, to: u32, blocks: &mut [AesBlock; 128]) -> u128 {
        let n = (to - from) as usize;
        let Some(blocks) = blocks.get_mut(..n) else {
            return 0;
        };
        for (block, pos) in blocks.iter_mut().zip(from..to) {
            *block = self.input_block(ext, pos);
        }
        self.encrypt_blocks(blocks);
        let mut otp = 0u128;
        for (block, pos) in blocks.iter().zip(from..to) {
            otp |= flip_bit(block) << (127 - pos);
        }
        otp
    }

    fn anonymise_ext(&self, ext: u128, bits: u32) -> u128 {
        let mut blocks = [AesBlock::default(); 128];
        let otp = self.table_otp(ext) | self.otp_range(ext, TABLE_BITS, bits, &mut blocks);
        ext ^ (otp & prefix_mask(bits))
    }

    /// The pseudonym of an IPv4 address.
    pub fn anonymise_v4(&self, addr: Ipv4Addr) -> Ipv4Addr {
        let ext = u128::from(u32::from(addr)) << 96;
        Ipv4Addr::from((self.anonymise_ext(ext, 32) >> 96) as u32)
    }

    /// The pseudonym of an IPv6 address.
    pub fn anonymise_v6(&self, addr: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.anonymise_ext(u128::from(addr), 128))
    }

    /// The pseudonym of an address (same family).
    pub fn anonymise(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => IpAddr::V4(self.anonymise_v4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.anonymise_v6(a)),
        }
    }

    /// The paper's algorithm with nothing precomputed: one AES block per address bit
    /// (all of them encrypted in one parallel call). The baseline the table and caches
    /// are measured against, and a cross-check of them in the tests.
    pub fn anonymise_uncached(&self, addr: IpAddr) -> IpAddr {
        let (ext, bits) = ext_of(addr);
        let mut blocks = [AesBlock::default(); 128];
        let otp = self.otp_range(ext, 0, bits, &mut blocks);
        from_ext(ext ^ otp, addr)
    }

    /// The original address of a pseudonym: re-identification (CI-5). Needs the receipt
    /// of an approval the caller has already recorded in its ledger.
    pub fn deanonymise(&self, pseudonym: IpAddr, _approval: &ReidentificationApproval) -> IpAddr {
        let (anon, bits) = ext_of(pseudonym);
        // Bit i of the original = bit i of the pseudonym XOR f(original's first i bits):
        // recover the original one bit at a time, most significant first.
        let mut orig = 0u128;
        for pos in 0..bits {
            let mut block = self.input_block(orig, pos);
            self.cipher.encrypt_block(&mut block);
            let bit = (anon >> (127 - pos) & 1) ^ flip_bit(&block);
            orig |= bit << (127 - pos);
        }
        from_ext(orig, pseudonym)
    }
}

/// The address in the top bits of a `u128`, and its bit length.
#[inline]
fn ext_of(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

#[inline]
fn from_ext(ext: u128, family: IpAddr) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((ext >> 96) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(ext)),
    }
}

/// IPv4 cache: first 24 bits.
const V4_CACHED_BITS: u32 = 24;
/// IPv6 cache: first 64 bits.
const V6_CACHED_BITS: u32 = 64;
/// Blocks encrypted per flush in the batch path (several parallel calls' worth).
const FLUSH_BLOCKS: usize = 1024;

/// IPv4 cache slot: the first 24 bits and their 24 flip bits.
#[derive(Clone, Copy, Default, Zeroize)]
struct V4Slot {
    /// Cached /24 + 1 (0 = empty).
    tag: u32,
    /// Flip bits 0..24, in the top bits.
    otp: u32,
}

/// IPv6 cache slot: the first 64 bits and their 64 flip bits.
#[derive(Clone, Copy, Default, Zeroize)]
struct V6Slot {
    /// Cached /64 (valid only when `full`).
    tag: u64,
    /// Flip bits 0..64.
    otp: u64,
    full: bool,
}

/// One address waiting for its blocks in the batch path.
#[derive(Clone, Copy)]
struct Job {
    index: usize,
    ext: u128,
    bits: u32,
    /// First bit position encrypted in this job (the ones before come from table/cache).
    from: u32,
    /// Flip bits known before encryption (top bits of a u128).
    otp: u128,
    /// Cache slot to fill when done (`usize::MAX`: none).
    fill: usize,
}

/// Cache hit/miss counters of a [`Pseudonymiser`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the prefix cache.
    pub hits: u64,
    /// Lookups that encrypted the cached bits afresh.
    pub misses: u64,
}

/// Crypto-PAn with per-thread prefix caches and a batch path: what the sensor runs.
///
/// Results are identical to [`CryptoPan::anonymise`]; only the work differs. Keep one
/// per worker thread (the caches need `&mut self`).
pub struct Pseudonymiser {
    pan: CryptoPan,
    /// The pad as an AES block: IPv4 inputs differ from it in the first 4 bytes only.
    pad_block: AesBlock,
    v4_cache: Box<[V4Slot]>,
    v6_cache: Box<[V6Slot]>,
    mask: usize,
    blocks: Vec<AesBlock>,
    jobs: Vec<Job>,
    stats: CacheStats,
}

impl fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("cache_slots", &self.v4_cache.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for Pseudonymiser {
    fn drop(&mut self) {
        self.v4_cache.zeroize();
        self.v6_cache.zeroize();
        self.pad_block.as_mut_slice().zeroize();
        // The spare capacity holds earlier inputs (address prefix + pad bits) too.
        self.blocks
            .resize(self.blocks.capacity(), AesBlock::default());
        zeroize_blocks(&mut self.blocks);
    }
}

#[inline]
fn slot_of(prefix: u64, mask: usize) -> usize {
    // Fibonacci hashing.
    (prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask
}

impl Pseudonymiser {
    /// Default number of cache slots per family (a power of two): 512 KiB for IPv4,
    /// 1.5 MiB for IPv6.
    pub const DEFAULT_CACHE_SLOTS: usize = 1 << 16;

    /// A pseudonymiser for `key` with [`Self::DEFAULT_CACHE_SLOTS`] slots per family.
    pub fn new(key: &CryptoPanKey) -> Self {
        Self::with_cache_slots(key, Self::DEFAULT_CACHE_SLOTS)
    }

    /// A pseudonymiser with `slots` cache slots per family (rounded up to a power of
    /// two, at least 1, at most 2^24).
    pub fn with_cache_slots(key: &CryptoPanKey, slots: usize) -> Self {
        let slots = slots.clamp(1, 1 << 24).next_power_of_two();
        let pan = CryptoPan::new(key);
        let pad_block = AesBlock::from(pan.pad.to_be_bytes());
        Self {
            pan,
            pad_block,
            v4_cache: vec![V4Slot::default(); slots].into_boxed_slice(),
            v6_cache: vec![V6Slot::default(); slots].into_boxed_slice(),
            mask: slots - 1,
            blocks: Vec::with_capacity(FLUSH_BLOCKS + 128),
            jobs: Vec::with_capacity(FLUSH_BLOCKS / 8),
            stats: CacheStats::default(),
        }
    }

    /// The underlying Crypto-PAn function (for re-identification and cross-checks).
    pub fn crypto_pan(&self) -> &CryptoPan {
        &self.pan
    }

    /// Cache hits and misses so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.stats
    }

    /// The pseudonym of one address.
    pub fn pseudonymise(&mut self, addr: IpAddr) -> IpAddr {
        let mut one = [addr];
        self.pseudonymise_in_place(&mut one);
        one[0]
    }

    /// Replaces every address in `addrs` by its pseudonym. Blocks of many addresses are
    /// encrypted together; no allocation once the internal buffers have grown.
    pub fn pseudonymise_in_place(&mut self, addrs: &mut [IpAddr]) {
        for index in 0..addrs.len() {
            let Some(&addr) = addrs.get(index) else {
                break;
            };
            match addr {
                IpAddr::V4(a) => self.queue_v4(index, u32::from(a)),
                IpAddr::V6(a) => self.queue_v6(index, u128::from(a)),
            }
            if self.blocks.len() >= FLUSH_BLOCKS {
                Self::flush(
                    &self.pan,
                    &mut self.blocks,
                    &mut self.jobs,
                    &mut self.v4_cache,
                    &mut self.v6_cache,
                    addrs,
                );
            }
        }
        Self::flush(
            &self.pan,
            &mut self.blocks,
            &mut self.jobs,
            &mut self.v4_cache,
            &mut self.v6_cache,
            addrs,
        );
    }

    #[inline]
    fn queue_v4(&mut self, index: usize, a: u32) {
        let prefix = a >> (32 - V4_CACHED_BITS);
        let slot = slot_of(u64::from(prefix), self.mask);
        let ext = u128::from(a) << 96;
        let (from, otp, fill) = match self.v4_cache.get(slot) {
            Some(s) if s.tag == prefix + 1 => {
                self.stats.hits += 1;
                (V4_CACHED_BITS, u128::from(s.otp) << 96, usize::MAX)
            }
            _ => {
                self.stats.misses += 1;
                (TABLE_BITS, self.pan.table_otp(ext), slot)
            }
        };
        // IPv4 inputs differ from the pad in their first 32 bits only.
        let pad32 = (self.pan.pad >> 96) as u32;
        let diff = a ^ pad32;
        let template = self.pad_block;
        self.blocks.extend((from..32).map(|pos| {
            let first = pad32 ^ (diff & !(u32::MAX >> pos));
            let mut block = template;
            if let Some(head) = block.get_mut(..4) {
                head.copy_from_slice(&first.to_be_bytes());
            }
            block
        }));
        self.jobs.push(Job {
            index,
            ext,
            bits: 32,
            from,
            otp,
            fill,
        });
    }

    #[inline]
    fn queue_v6(&mut self, index: usize, ext: u128) {
        let prefix = (ext >> 64) as u64;
        let slot = slot_of(prefix, self.mask);
        let (from, otp, fill) = match self.v6_cache.get(slot) {
            Some(s) if s.full && s.tag == prefix => {
                self.stats.hits += 1;
                (V6_CACHED_BITS, u128::from(s.otp) << 64, usize::MAX)
            }
            _ => {
                self.stats.misses += 1;
                (TABLE_BITS, self.pan.table_otp(ext), slot)
            }
        };
        // In 64-bit halves: below bit 64 the low half is the pad's, from bit 64 on the
        // high half is the address's.
        let (hi, lo) = ((ext >> 64) as u64, ext as u64);
        let (pad_hi, pad_lo) = ((self.pan.pad >> 64) as u64, self.pan.pad as u64);
        let (diff_hi, diff_lo) = (hi ^ pad_hi, lo ^ pad_lo);
        let block = |h: u64, l: u64| {
            let mut bytes = [0u8; 16];
            let (bh, bl) = bytes.split_at_mut(8);
            bh.copy_from_slice(&h.to_be_bytes());
            bl.copy_from_slice(&l.to_be_bytes());
            AesBlock::from(bytes)
        };
        self.blocks.extend(
            (from.min(64)..64).map(|pos| block(pad_hi ^ (diff_hi & !(u64::MAX >> pos)), pad_lo)),
        );
        self.blocks.extend(
            (from.max(64)..128)
                .map(|pos| block(hi, pad_lo ^ (diff_lo & !(u64::MAX >> (pos - 64))))),
        );
        self.jobs.push(Job {
            index,
            ext,
            bits: 128,
            from,
            otp,
            fill,
        });
    }

    fn flush(
        pan: &CryptoPan,
        blocks: &mut Vec<AesBlock>,
        jobs: &mut Vec<Job>,
        v4_cache: &mut [V4Slot],
        v6_cache: &mut [V6Slot],
        addrs: &mut [IpAddr],
    ) {
        if jobs.is_empty() {
            return;
        }
        pan.encrypt_blocks(blocks);
        let mut done = blocks.iter();
        for job in jobs.iter() {
            let mut otp = job.otp;
            // Most significant first; `take` stops without touching the next job's blocks.
            let mut acc = 0u128;
            for block in done.by_ref().take((job.bits - job.from) as usize) {
                acc = acc << 1 | flip_bit(block);
            }
            // The last position (bits - 1) is bit 128 - bits.
            otp |= acc << (128 - job.bits);
            if job.fill != usize::MAX {
                if job.bits == 32 {
                    if let Some(s) = v4_cache.get_mut(job.fill) {
                        *s = V4Slot {
                            tag: ((job.ext >> 104) as u32) + 1,
                            otp: ((otp >> 96) as u32) & !0xff,
                        };
                    }
                } else if let Some(s) = v6_cache.get_mut(job.fill) {
                    *s = V6Slot {
                        tag: (job.ext >> 64) as u64,
                        otp: (otp >> 64) as u64,
                        full: true,
                    };
                }
            }
            let anon = job.ext ^ (otp & prefix_mask(job.bits));
            if let Some(a) = addrs.get_mut(job.index) {
                *a = from_ext(anon, *a);
            }
        }
        blocks.clear();
        jobs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq_key() -> CryptoPanKey {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        CryptoPanKey::from_bytes(k)
    }

    #[test]
    fn key_debug_is_redacted_and_hex_parses() {
        let k = CryptoPanKey::from_hex(
            "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F",
        )
        .unwrap();
        assert_eq!(k.bytes, seq_key().bytes);
        assert_eq!(format!("{k:?}"), "CryptoPanKey(<redacted>)");
        assert!(!format!("{:?}", CryptoPan::new(&k)).contains("01"));
        assert_eq!(
            CryptoPanKey::from_hex("00").err(),
            Some(KeyError::Length { digits: 2 })
        );
        assert_eq!(
            CryptoPanKey::from_hex(&"g".repeat(64)).err(),
            Some(KeyError::NotHex)
        );
    }

    #[test]
    fn table_cache_and_uncached_paths_agree() {
        let mut p = Pseudonymiser::with_cache_slots(&seq_key(), 4);
        let addrs: Vec<IpAddr> = [
            "192.0.2.1",
            "192.0.2.77",
            "10.1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "2001:db8::2",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let mut batch = addrs.clone();
        p.pseudonymise_in_place(&mut batch);
        let mut again = addrs.clone();
        p.pseudonymise_in_place(&mut again);
        for ((a, b), c) in addrs.iter().zip(&batch).zip(&again) {
            let want = p.crypto_pan().anonymise_uncached(*a);
            assert_eq!(*b, want, "{a}");
            assert_eq!(*c, want, "{a} from cache");
            assert_eq!(p.crypto_pan().anonymise(*a), want, "{a} single");
        }
        assert!(p.cache_stats().hits > 0);
    }

    #[test]
    fn deanonymise_inverts() {
        let pan = CryptoPan::new(&seq_key());
        let receipt = ReidentificationApproval::recorded("case-1", 7);
        for s in ["192.0.2.1", "2001:db8::1", "0.0.0.0"] {
            let a: IpAddr = s.parse().unwrap();
            assert_eq!(pan.deanonymise(pan.anonymise(a), &receipt), a);
        }
        assert_eq!(receipt.ledger_index(), 7);
        assert_eq!(receipt.approval_reference(), "case-1");
    }
}
