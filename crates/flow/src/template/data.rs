//! Data and options records: the per-template source plan for fixed data templates
//! (`Plan`, `extract`) and the options-record interpreter (`decode_options`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::*;

pub(super) fn decode_data(
    ctx: SetCtx,
    t: &Template,
    body: &[u8],
    opts: &OptionsState,
    batch: &mut FlowBatch,
) {
    let source = if ctx.key.version == 9 {
        FlowSource::NetflowV9
    } else {
        FlowSource::Ipfix
    };
    let mut r = Reader::new(body);
    if let Some(len) = t.fixed_len {
        batch
            .records
            .reserve(body.len().checked_div(len).unwrap_or(0));
        while let Some(rec) = r.take(len) {
            batch.records.push(extract(rec, &t.plan, ctx, opts, source));
        }
        return;
    }
    // Variable-length fields: find each field's place in this record, then extract.
    while r.remaining() >= t.min_len {
        let rest = r.rest();
        let mut layout = Layout::default();
        let Some(off) = walk_fields(&mut r, &t.ops, batch, |kind, off, b| {
            if let (Ok(o), Ok(l)) = (u16::try_from(off), u16::try_from(b.len())) {
                layout.set(kind, Field { off: o, len: l });
            }
        }) else {
            break;
        };
        let rec = rest.get(..off).unwrap_or_default();
        batch
            .records
            .push(extract(rec, &Plan::new(&layout), ctx, opts, source));
    }
}

#[inline(always)]
pub(super) fn address(rec: &[u8], v4: Field, v6: Field, v6_last: bool) -> IpAddr {
    let a4 = field_bytes(rec, v4)
        .and_then(|b| b.first_chunk::<4>())
        .map(|a| IpAddr::V4(Ipv4Addr::from(*a)));
    let a6 = field_bytes(rec, v6)
        .and_then(|b| b.first_chunk::<16>())
        .map(|a| IpAddr::V6(Ipv6Addr::from(*a)));
    let (first, last) = if v6_last { (a4, a6) } else { (a6, a4) };
    let mut out = first.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Some(a) = last {
        set_addr(&mut out, a);
    }
    out
}

/// Where a flow time comes from, chosen once per template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum TimeSource {
    #[default]
    None,
    Ms,
    Sec,
    Ntp,
    Uptime,
    DeltaUs,
}

/// Where the sampling rate comes from, chosen once per template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum SamplingSource {
    /// What options data said for the whole (exporter, domain).
    #[default]
    Domain,
    Interval,
    Rfc5477,
    Sampler,
}

/// Where ICMP type and code come from, chosen once per template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum IcmpSource {
    /// Exporters without ICMP fields put type and code in the destination port.
    #[default]
    DstPort,
    TypeCode,
    Split,
}

/// The numeric values a record can carry, each read into one slot of a per-record array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Slot {
    SrcPort,
    DstPort,
    Protocol,
    Tos,
    TcpFlags,
    InIf,
    InIfPhysical,
    OutIf,
    OutIfPhysical,
    Packets,
    Bytes,
    RevPackets,
    RevBytes,
    Direction,
    /// `icmpTypeCode`, or the type when the template has them apart.
    Icmp,
    IcmpCode,
    SystemInit,
    Start,
    End,
    /// `samplingInterval`, or RFC 5477's packet interval.
    Sampling,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
    SamplerId,
}

pub(super) const N_SLOTS: usize = Slot::SamplerId as usize + 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NumOp {
    pub(super) off: u16,
    pub(super) len: u16,
    pub(super) slot: u8,
    /// Fields of 1 to 8 bytes ending at least 8 bytes into the record are read as the
    /// big-endian `u64` that ends where they end, masked to their width: one load, no
    /// branch on the width.
    pub(super) wide: bool,
    pub(super) mask: u64,
}

/// A data template compiled for decoding: the offsets of the numeric fields it has (and
/// only those), the address fields, and, decided once, where times, sampling and ICMP
/// come from. Per record: one short loop of reads into an array, then fixed assembly.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Plan {
    pub(super) src_v4: Field,
    pub(super) src_v6: Field,
    pub(super) src_v6_last: bool,
    pub(super) dst_v4: Field,
    pub(super) dst_v6: Field,
    pub(super) dst_v6_last: bool,
    pub(super) nums: [NumOp; N_SLOTS],
    pub(super) n_nums: usize,
    pub(super) has_direction: bool,
    pub(super) has_system_init: bool,
    pub(super) icmp: IcmpSource,
    pub(super) start: TimeSource,
    pub(super) end: TimeSource,
    pub(super) sampling: SamplingSource,
}

pub(super) fn present(f: Field) -> Option<Field> {
    (f.len != 0).then_some(f)
}

impl Plan {
    pub(super) fn new(l: &Layout) -> Plan {
        let g = |k| l.get(k);
        let mut p = Plan {
            src_v4: g(Kind::SrcV4),
            src_v6: g(Kind::SrcV6),
            src_v6_last: l.src_v6_last,
            dst_v4: g(Kind::DstV4),
            dst_v6: g(Kind::DstV6),
            dst_v6_last: l.dst_v6_last,
            ..Plan::default()
        };
        let mut slots = [Field::default(); N_SLOTS];
        let mut put = |s: Slot, f: Field| {
            if let Some(slot) = slots.get_mut(s as usize) {
                *slot = f;
            }
        };
        let either = |a: Kind, b: Kind| present(g(a)).unwrap_or(g(b));
        put(Slot::SrcPort, g(Kind::SrcPort));
        put(Slot::DstPort, g(Kind::DstPort));
        put(Slot::Protocol, g(Kind::Protocol));
        put(Slot::Tos, g(Kind::Tos));
        put(Slot::TcpFlags, g(Kind::TcpFlags));
        put(Slot::InIf, g(Kind::InIf));
        put(Slot::InIfPhysical, g(Kind::InIfPhysical));
        put(Slot::OutIf, g(Kind::OutIf));
        put(Slot::OutIfPhysical, g(Kind::OutIfPhysical));
        put(Slot::Packets, either(Kind::Packets, Kind::PacketsTotal));
        put(Slot::Bytes, either(Kind::Bytes, Kind::BytesTotal));
        put(Slot::RevPackets, g(Kind::RevPackets));
        put(Slot::RevBytes, g(Kind::RevBytes));
        put(Slot::Direction, g(Kind::Direction));
        put(Slot::SystemInit, g(Kind::SystemInitMs));
        p.has_direction = present(g(Kind::Direction)).is_some();
        p.has_system_init = present(g(Kind::SystemInitMs)).is_some();
        if let Some(f) = present(g(Kind::IcmpTypeCode)) {
            p.icmp = IcmpSource::TypeCode;
            put(Slot::Icmp, f);
        } else if present(g(Kind::IcmpType))
            .or(present(g(Kind::IcmpCode)))
            .is_some()
        {
            p.icmp = IcmpSource::Split;
            put(Slot::Icmp, g(Kind::IcmpType));
            put(Slot::IcmpCode, g(Kind::IcmpCode));
        }
        let time = |ms, sec, ntp, up, delta| {
            [
                (ms, TimeSource::Ms),
                (sec, TimeSource::Sec),
                (ntp, TimeSource::Ntp),
                (up, TimeSource::Uptime),
                (delta, TimeSource::DeltaUs),
            ]
            .into_iter()
            .find_map(|(k, t)| present(g(k)).map(|f| (t, f)))
            .unwrap_or_default()
        };
        let (start, f) = time(
            Kind::StartMs,
            Kind::StartSec,
            Kind::StartNtp,
            Kind::FirstUptime,
            Kind::StartDeltaUs,
        );
        p.start = start;
        put(Slot::Start, f);
        let (end, f) = time(
            Kind::EndMs,
            Kind::EndSec,
            Kind::EndNtp,
            Kind::LastUptime,
            Kind::EndDeltaUs,
        );
        p.end = end;
        put(Slot::End, f);
        let rfc5477 = [
            Kind::PacketInterval,
            Kind::PacketSpace,
            Kind::SamplingSize,
            Kind::SamplingPopulation,
        ];
        if let Some(f) = present(g(Kind::SamplingInterval)) {
            p.sampling = SamplingSource::Interval;
            put(Slot::Sampling, f);
        } else if rfc5477.iter().any(|k| present(g(*k)).is_some()) {
            p.sampling = SamplingSource::Rfc5477;
            put(Slot::Sampling, g(Kind::PacketInterval));
            put(Slot::PacketSpace, g(Kind::PacketSpace));
            put(Slot::SamplingSize, g(Kind::SamplingSize));
            put(Slot::SamplingPopulation, g(Kind::SamplingPopulation));
        } else if let Some(f) = present(g(Kind::SamplerId)) {
            p.sampling = SamplingSource::Sampler;
            put(Slot::SamplerId, f);
        }
        for (i, f) in slots.iter().enumerate() {
            if f.len != 0
                && let (Some(op), Ok(slot)) = (p.nums.get_mut(p.n_nums), u8::try_from(i))
            {
                let end = usize::from(f.off) + usize::from(f.len);
                *op = NumOp {
                    off: f.off,
                    len: f.len,
                    slot,
                    wide: f.len <= 8 && end >= 8,
                    mask: u64::MAX
                        .checked_shr(64 - 8 * u32::from(f.len))
                        .unwrap_or(u64::MAX),
                };
                p.n_nums += 1;
            }
        }
        p
    }
}

/// Reads one data record through its compiled plan.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // reduced-size fields keep their low bits
pub(super) fn extract(
    rec: &[u8],
    p: &Plan,
    ctx: SetCtx,
    opts: &OptionsState,
    source: FlowSource,
) -> FlowRecord {
    let mut v = [0u64; N_SLOTS];
    for op in p.nums.get(..p.n_nums).unwrap_or_default() {
        let start = usize::from(op.off);
        let end = start + usize::from(op.len);
        let value = if op.wide {
            rec.get(end - 8..end)
                .and_then(|b| b.first_chunk::<8>())
                .map_or(0, |b| u64::from_be_bytes(*b) & op.mask)
        } else {
            rec.get(start..end).map_or(0, be_uint)
        };
        if let Some(slot) = v.get_mut(usize::from(op.slot)) {
            *slot = value;
        }
    }
    let at = |s: Slot| v.get(s as usize).copied().unwrap_or(0);
    let mut out = FlowRecord {
        src_addr: address(rec, p.src_v4, p.src_v6, p.src_v6_last),
        dst_addr: address(rec, p.dst_v4, p.dst_v6, p.dst_v6_last),
        exporter: ctx.key.exporter,
        observation_domain: ctx.key.domain,
        src_port: at(Slot::SrcPort) as u16,
        dst_port: at(Slot::DstPort) as u16,
        protocol: at(Slot::Protocol) as u8,
        tos: at(Slot::Tos) as u8,
        tcp_flags: at(Slot::TcpFlags) as u8,
        input_if: match at(Slot::InIf) {
            0 => at(Slot::InIfPhysical),
            v => v,
        } as u32,
        output_if: match at(Slot::OutIf) {
            0 => at(Slot::OutIfPhysical),
            v => v,
        } as u32,
        packets: at(Slot::Packets),
        bytes: at(Slot::Bytes),
        rev_packets: at(Slot::RevPackets),
        rev_bytes: at(Slot::RevBytes),
        direction: match (p.has_direction, at(Slot::Direction)) {
            (true, 0) => Direction::Ingress,
            (true, 1) => Direction::Egress,
            _ => Direction::Unknown,
        },
        source,
        ..FlowRecord::default()
    };
    match p.icmp {
        IcmpSource::TypeCode => {
            let v = at(Slot::Icmp);
            out.icmp_type = (v >> 8) as u8;
            out.icmp_code = v as u8;
        }
        IcmpSource::Split => {
            out.icmp_type = at(Slot::Icmp) as u8;
            out.icmp_code = at(Slot::IcmpCode) as u8;
        }
        IcmpSource::DstPort => {
            if out.is_icmp() {
                let [ty, code] = out.dst_port.to_be_bytes();
                out.icmp_type = ty;
                out.icmp_code = code;
            }
        }
    }
    let time = |t: TimeSource, raw: u64| -> i64 {
        match t {
            TimeSource::None => 0,
            TimeSource::Ms => raw.cast_signed(),
            TimeSource::Sec => raw.cast_signed().saturating_mul(1000),
            TimeSource::Ntp => ntp_to_ms(raw),
            TimeSource::Uptime if ctx.key.version == 9 => {
                uptime_to_utc_ms(ctx.export_ms, ctx.sys_uptime, raw as u32)
            }
            // IPFIX: relative to systemInitTimeMilliseconds, from the record or options.
            TimeSource::Uptime => {
                let init = if p.has_system_init {
                    Some(at(Slot::SystemInit).cast_signed())
                } else {
                    opts.system_init_ms
                };
                init.map_or(0, |i| i.saturating_add(raw.cast_signed()))
            }
            TimeSource::DeltaUs => ctx.export_ms - (raw / 1000).cast_signed(),
        }
    };
    out.start_ms = time(p.start, at(Slot::Start));
    out.end_ms = time(p.end, at(Slot::End));
    out.sampling_rate = match p.sampling {
        SamplingSource::Domain => opts.default_sampling,
        SamplingSource::Interval => match at(Slot::Sampling) {
            0 => opts.default_sampling,
            v => u32::try_from(v).unwrap_or(u32::MAX),
        },
        SamplingSource::Rfc5477 => rate_from(
            at(Slot::Sampling),
            at(Slot::PacketSpace),
            at(Slot::SamplingSize),
            at(Slot::SamplingPopulation),
        )
        .unwrap_or(opts.default_sampling),
        SamplingSource::Sampler if opts.samplers.is_empty() => opts.default_sampling,
        SamplingSource::Sampler => opts
            .samplers
            .get(&at(Slot::SamplerId))
            .copied()
            .unwrap_or(opts.default_sampling),
    };
    out
}

/// `samplingPopulation / samplingSize` (random n-out-of-N), or `(samplingPacketInterval +
/// samplingPacketSpace) / samplingPacketInterval` (systematic count-based), RFC 5477.
pub(super) fn rate_from(interval: u64, space: u64, size: u64, population: u64) -> Option<u32> {
    let rate = population
        .checked_div(size)
        .filter(|r| *r > 0)
        .or_else(|| interval.checked_add(space)?.checked_div(interval))?;
    Some(u32::try_from(rate).unwrap_or(u32::MAX)).filter(|r| *r > 0)
}

/// A sampling rate carried in an (options) record itself.
pub(super) fn explicit_rate(s: &Scratch<'_>) -> Option<u32> {
    if s.sampling > 0 {
        return Some(s.sampling);
    }
    rate_from(
        s.packet_interval,
        s.packet_space,
        s.sampling_size,
        s.sampling_population,
    )
}

pub(super) const MAX_NAME_LEN: usize = 64;

pub(super) fn decode_options(
    t: &Template,
    body: &[u8],
    domain: &mut OptionsState,
    limits: &TemplateLimits,
    batch: &mut FlowBatch,
) {
    for_each_record(t, body, batch, |s, _| {
        let rate = explicit_rate(s).unwrap_or(0);
        if rate > 0 {
            match s.sampler_id {
                Some(id) => {
                    if domain.samplers.len() < limits.max_samplers
                        || domain.samplers.contains_key(&id)
                    {
                        domain.samplers.insert(id, rate);
                    }
                }
                None => domain.default_sampling = rate,
            }
        }
        if let Some(init) = s.system_init_ms {
            domain.system_init_ms = Some(init);
        }
        let if_index = s.scope_interface.unwrap_or(s.rec.input_if);
        if !s.interface_name.is_empty() && if_index != 0 {
            let name = s
                .interface_name
                .get(..MAX_NAME_LEN)
                .unwrap_or(s.interface_name);
            let name = String::from_utf8_lossy(name);
            let name = name.trim_end_matches('\0');
            if domain.interface_names.len() < limits.max_interface_names
                || domain.interface_names.contains_key(&if_index)
            {
                domain.interface_names.insert(if_index, name.into());
            }
        }
    });
}
