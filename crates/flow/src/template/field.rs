//! The information-element table and the field interpreter: what each IE means (`kind_of`)
//! and how its bytes land in a record (`apply`), shared by data and options records.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::*;

pub(super) const VARLEN: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Op {
    pub(super) off: u16,
    pub(super) len: u16,
    pub(super) kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    Skip,
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    SrcPort,
    DstPort,
    Protocol,
    Tos,
    TcpFlags,
    InIf,
    OutIf,
    /// `ingressPhysicalInterface` / `egressPhysicalInterface`: used when 10/14 are absent.
    InIfPhysical,
    OutIfPhysical,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    RevBytes,
    RevPackets,
    Direction,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    FirstUptime,
    LastUptime,
    StartSec,
    EndSec,
    StartMs,
    EndMs,
    StartNtp,
    EndNtp,
    StartDeltaUs,
    EndDeltaUs,
    SystemInitMs,
    SamplingInterval,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
    SamplerId,
    /// Options scope: the interface the option record describes.
    ScopeInterface,
    InterfaceName,
}

pub(super) const N_KINDS: usize = Kind::InterfaceName as usize + 1;

/// Where one field sits in a record; `len == 0` means the template lacks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Field {
    pub(super) off: u16,
    pub(super) len: u16,
}

/// A data template compiled to one slot per kind: decoding a record reads each slot the
/// template has, with no per-field dispatch (the branches are the same for every record
/// of a set, so they predict perfectly).
///
/// A kind that appears twice keeps its last occurrence; for addresses, where a template
/// may carry both families (tunnels: outer IPv6, inner IPv4), the one later in the
/// template wins unless it is all zeros.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    pub(super) fields: [Field; N_KINDS],
    pub(super) src_v6_last: bool,
    pub(super) dst_v6_last: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            fields: [Field::default(); N_KINDS],
            src_v6_last: false,
            dst_v6_last: false,
        }
    }
}

impl Layout {
    #[inline(always)]
    pub(super) fn get(&self, k: Kind) -> Field {
        self.fields.get(k as usize).copied().unwrap_or_default()
    }

    #[inline]
    pub(super) fn set(&mut self, k: Kind, f: Field) {
        match k {
            Kind::SrcV4 | Kind::SrcV6 => self.src_v6_last = k == Kind::SrcV6,
            Kind::DstV4 | Kind::DstV6 => self.dst_v6_last = k == Kind::DstV6,
            _ => {}
        }
        if let Some(slot) = self.fields.get_mut(k as usize) {
            *slot = f;
        }
    }

    pub(super) fn from_ops(ops: &[Op]) -> Self {
        let mut l = Layout::default();
        for op in ops {
            if op.len != VARLEN {
                l.set(
                    op.kind,
                    Field {
                        off: op.off,
                        len: op.len,
                    },
                );
            }
        }
        l
    }
}

#[inline(always)]
pub(super) fn field_bytes(rec: &[u8], f: Field) -> Option<&[u8]> {
    if f.len == 0 {
        return None;
    }
    let start = usize::from(f.off);
    rec.get(start..start + usize::from(f.len))
}

/// IANA private enterprise number of RFC 5103 reverse information elements.
pub(super) const PEN_REVERSE: u32 = 29305;

pub(super) fn kind_of(ie: u16, pen: u32, len: u16) -> Kind {
    let k = match (pen, ie) {
        (0, 1) => Kind::Bytes,
        (0, 2) => Kind::Packets,
        (0, 4) => Kind::Protocol,
        (0, 5) => Kind::Tos,
        (0, 6) => Kind::TcpFlags,
        (0, 7) => Kind::SrcPort,
        (0, 8) => Kind::SrcV4,
        (0, 10) => Kind::InIf,
        (0, 11) => Kind::DstPort,
        (0, 12) => Kind::DstV4,
        (0, 14) => Kind::OutIf,
        (0, 21) => Kind::LastUptime,
        (0, 22) => Kind::FirstUptime,
        (0, 27) => Kind::SrcV6,
        (0, 28) => Kind::DstV6,
        (0, 32 | 139) => Kind::IcmpTypeCode,
        (0, 34 | 50) => Kind::SamplingInterval,
        (0, 48 | 302) => Kind::SamplerId,
        (0, 61) => Kind::Direction,
        (0, 82) => Kind::InterfaceName,
        (0, 85) => Kind::BytesTotal,
        (0, 86) => Kind::PacketsTotal,
        (0, 150) => Kind::StartSec,
        (0, 151) => Kind::EndSec,
        (0, 152) => Kind::StartMs,
        (0, 153) => Kind::EndMs,
        (0, 154 | 156) => Kind::StartNtp,
        (0, 155 | 157) => Kind::EndNtp,
        (0, 158) => Kind::StartDeltaUs,
        (0, 159) => Kind::EndDeltaUs,
        (0, 160) => Kind::SystemInitMs,
        (0, 176 | 178) => Kind::IcmpType,
        (0, 177 | 179) => Kind::IcmpCode,
        (0, 252) => Kind::InIfPhysical,
        (0, 253) => Kind::OutIfPhysical,
        (0, 305) => Kind::PacketInterval,
        (0, 306) => Kind::PacketSpace,
        (0, 309) => Kind::SamplingSize,
        (0, 310) => Kind::SamplingPopulation,
        (PEN_REVERSE, 1) => Kind::RevBytes,
        (PEN_REVERSE, 2) => Kind::RevPackets,
        _ => Kind::Skip,
    };
    // A field whose length cannot hold what we expect is skipped, not misread.
    let ok = match k {
        Kind::SrcV4 | Kind::DstV4 => len == 4,
        Kind::SrcV6 | Kind::DstV6 => len == 16,
        Kind::StartNtp | Kind::EndNtp => len == 8,
        Kind::InterfaceName | Kind::Skip => true,
        _ => (1..=8).contains(&len),
    };
    if ok { k } else { Kind::Skip }
}

/// Per-record values that need context before they become record fields.
#[derive(Default)]
pub(super) struct Scratch<'a> {
    pub(super) rec: FlowRecord,
    pub(super) first_up: Option<u32>,
    pub(super) last_up: Option<u32>,
    pub(super) start_abs: Option<i64>,
    pub(super) end_abs: Option<i64>,
    pub(super) start_delta_us: Option<u64>,
    pub(super) end_delta_us: Option<u64>,
    pub(super) system_init_ms: Option<i64>,
    pub(super) bytes_total: u64,
    pub(super) packets_total: u64,
    pub(super) sampling: u32,
    pub(super) packet_interval: u64,
    pub(super) packet_space: u64,
    pub(super) sampling_size: u64,
    pub(super) sampling_population: u64,
    pub(super) sampler_id: Option<u64>,
    pub(super) icmp_set: bool,
    pub(super) scope_interface: Option<u32>,
    pub(super) interface_name: &'a [u8],
}

pub(super) const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

pub(super) fn ntp_to_ms(v: u64) -> i64 {
    let secs = (v >> 32).cast_signed() - NTP_UNIX_OFFSET_S;
    let frac_ms = ((v & 0xffff_ffff) * 1000) >> 32;
    secs * 1000 + frac_ms.cast_signed()
}

#[inline]
pub(super) fn set_addr(slot: &mut IpAddr, value: IpAddr) {
    if !value.is_unspecified() || slot.is_unspecified() {
        *slot = value;
    }
}

#[inline]
pub(super) fn apply<'a>(kind: Kind, b: &'a [u8], s: &mut Scratch<'a>) {
    // Truncating casts below are deliberate: a field wider than its record slot keeps
    // its low bits, which is what reduced-size-encoding readers do.
    #[allow(clippy::cast_possible_truncation)]
    match kind {
        Kind::Skip => {}
        // Templates that carry both IPv4 and IPv6 address fields fill the unused family
        // with zeros: an all-zero address never replaces one already read.
        Kind::SrcV4 => {
            if let Some(a) = b.first_chunk::<4>() {
                set_addr(&mut s.rec.src_addr, IpAddr::V4(Ipv4Addr::from(*a)));
            }
        }
        Kind::DstV4 => {
            if let Some(a) = b.first_chunk::<4>() {
                set_addr(&mut s.rec.dst_addr, IpAddr::V4(Ipv4Addr::from(*a)));
            }
        }
        Kind::SrcV6 => {
            if let Some(a) = b.first_chunk::<16>() {
                set_addr(&mut s.rec.src_addr, IpAddr::V6(Ipv6Addr::from(*a)));
            }
        }
        Kind::DstV6 => {
            if let Some(a) = b.first_chunk::<16>() {
                set_addr(&mut s.rec.dst_addr, IpAddr::V6(Ipv6Addr::from(*a)));
            }
        }
        Kind::SrcPort => s.rec.src_port = be_uint(b) as u16,
        Kind::DstPort => s.rec.dst_port = be_uint(b) as u16,
        Kind::Protocol => s.rec.protocol = be_uint(b) as u8,
        Kind::Tos => s.rec.tos = be_uint(b) as u8,
        Kind::TcpFlags => s.rec.tcp_flags = be_uint(b) as u8,
        Kind::InIf => s.rec.input_if = be_uint(b) as u32,
        Kind::OutIf => s.rec.output_if = be_uint(b) as u32,
        Kind::InIfPhysical => {
            if s.rec.input_if == 0 {
                s.rec.input_if = be_uint(b) as u32;
            }
        }
        Kind::OutIfPhysical => {
            if s.rec.output_if == 0 {
                s.rec.output_if = be_uint(b) as u32;
            }
        }
        Kind::Bytes => s.rec.bytes = be_uint(b),
        Kind::Packets => s.rec.packets = be_uint(b),
        Kind::BytesTotal => s.bytes_total = be_uint(b),
        Kind::PacketsTotal => s.packets_total = be_uint(b),
        Kind::RevBytes => s.rec.rev_bytes = be_uint(b),
        Kind::RevPackets => s.rec.rev_packets = be_uint(b),
        Kind::Direction => {
            s.rec.direction = match be_uint(b) {
                0 => Direction::Ingress,
                1 => Direction::Egress,
                _ => Direction::Unknown,
            }
        }
        Kind::IcmpTypeCode => {
            let v = be_uint(b) as u16;
            s.rec.icmp_type = (v >> 8) as u8;
            s.rec.icmp_code = v as u8;
            s.icmp_set = true;
        }
        Kind::IcmpType => {
            s.rec.icmp_type = be_uint(b) as u8;
            s.icmp_set = true;
        }
        Kind::IcmpCode => {
            s.rec.icmp_code = be_uint(b) as u8;
            s.icmp_set = true;
        }
        Kind::FirstUptime => s.first_up = Some(be_uint(b) as u32),
        Kind::LastUptime => s.last_up = Some(be_uint(b) as u32),
        Kind::StartSec => s.start_abs = Some(be_uint(b).cast_signed().saturating_mul(1000)),
        Kind::EndSec => s.end_abs = Some(be_uint(b).cast_signed().saturating_mul(1000)),
        Kind::StartMs => s.start_abs = Some(be_uint(b).cast_signed()),
        Kind::EndMs => s.end_abs = Some(be_uint(b).cast_signed()),
        Kind::StartNtp => s.start_abs = Some(ntp_to_ms(be_uint(b))),
        Kind::EndNtp => s.end_abs = Some(ntp_to_ms(be_uint(b))),
        Kind::StartDeltaUs => s.start_delta_us = Some(be_uint(b)),
        Kind::EndDeltaUs => s.end_delta_us = Some(be_uint(b)),
        Kind::SystemInitMs => s.system_init_ms = Some(be_uint(b).cast_signed()),
        Kind::SamplingInterval => s.sampling = be_uint(b) as u32,
        Kind::PacketInterval => s.packet_interval = be_uint(b),
        Kind::PacketSpace => s.packet_space = be_uint(b),
        Kind::SamplingSize => s.sampling_size = be_uint(b),
        Kind::SamplingPopulation => s.sampling_population = be_uint(b),
        Kind::SamplerId => s.sampler_id = Some(be_uint(b)),
        Kind::ScopeInterface => s.scope_interface = Some(be_uint(b) as u32),
        Kind::InterfaceName => s.interface_name = b,
    }
}
