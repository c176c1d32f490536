//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): the template cache and the data decoder.
//!
//! Templates are cached per (exporter address, observation domain / source id, template
//! id) — and per protocol version, so a v9 and an IPFIX exporter on one address never
//! share one. Each template is *compiled* once into a list of field operations: for a
//! template without variable-length fields, only the fields we use are kept, each with its
//! offset in the record, so decoding a record is a walk over a dozen `(offset, len, kind)`
//! triples and nothing else. Enterprise-specific fields (IPFIX PEN bit) and fields we do
//! not use cost nothing per record.
//!
//! Bounds (all in [`TemplateLimits`]): fields per template, templates per domain, domains,
//! interface names per domain, and the bytes of data sets buffered while waiting for
//! their template. Anything beyond is refused and counted.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::FxHashMap;

use crate::anomaly::Anomaly;
use crate::export::{Datagram, DatagramDecoder, uptime_to_utc_ms};
use crate::reader::{Reader, be_uint};
use crate::record::{Direction, FlowBatch, FlowRecord, FlowSource};

/// The DoS bounds and timeouts of the template cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateLimits {
    /// Templates with more fields are refused (real exporters send < 100).
    pub max_fields_per_template: usize,
    /// Templates cached per (exporter, domain); more are refused.
    pub max_templates_per_domain: usize,
    /// (exporter, domain) pairs tracked; templates of further pairs are refused.
    pub max_domains: usize,
    /// A template not refreshed for this long is forgotten (0 = never).
    pub template_ttl_ms: i64,
    /// Data sets buffered while their template is unknown.
    pub max_pending_sets: usize,
    /// Bytes of data sets buffered while their template is unknown.
    pub max_pending_bytes: usize,
    /// Buffered data sets older than this are dropped.
    pub pending_ttl_ms: i64,
    /// Interface names remembered per (exporter, domain) from options data.
    pub max_interface_names: usize,
    /// Sampler ids remembered per (exporter, domain) from options data.
    pub max_samplers: usize,
}

impl Default for TemplateLimits {
    fn default() -> Self {
        Self {
            max_fields_per_template: 256,
            max_templates_per_domain: 1024,
            max_domains: 16_384,
            template_ttl_ms: 30 * 60 * 1000,
            max_pending_sets: 256,
            max_pending_bytes: 1 << 20,
            pending_ttl_ms: 5 * 60 * 1000,
            max_interface_names: 4096,
            max_samplers: 1024,
        }
    }
}

/// What [`TemplateDecoder::expire`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Templates not refreshed within the TTL.
    pub templates: usize,
    /// Buffered data sets whose template never came.
    pub pending_sets: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DomainKey {
    exporter: IpAddr,
    domain: u32,
    version: u16,
}

/// Per (exporter, domain) state: templates and what options data told us.
#[derive(Debug, Default)]
struct Domain {
    templates: FxHashMap<u16, Template>,
    opts: OptionsState,
}

/// What options data told us about an (exporter, domain).
#[derive(Debug, Default)]
struct OptionsState {
    default_sampling: u32,
    samplers: FxHashMap<u64, u32>,
    interface_names: FxHashMap<u32, Box<str>>,
    system_init_ms: Option<i64>,
}

#[derive(Debug)]
struct Template {
    refreshed_ms: i64,
    options: bool,
    /// Record length when no field is variable-length.
    fixed_len: Option<usize>,
    /// Fixed templates: used fields only, with offsets. Variable: every field, in order.
    ops: Box<[Op]>,
    /// Smallest possible record (a variable-length field takes at least its length byte).
    min_len: usize,
    /// Fixed data templates: where each record field comes from.
    plan: Plan,
}

const VARLEN: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Op {
    off: u16,
    len: u16,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
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

const N_KINDS: usize = Kind::InterfaceName as usize + 1;

/// Where one field sits in a record; `len == 0` means the template lacks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Field {
    off: u16,
    len: u16,
}

/// A data template compiled to one slot per kind: decoding a record reads each slot the
/// template has, with no per-field dispatch (the branches are the same for every record
/// of a set, so they predict perfectly).
///
/// A kind that appears twice keeps its last occurrence; for addresses, where a template
/// may carry both families (tunnels: outer IPv6, inner IPv4), the one later in the
/// template wins unless it is all zeros.
#[derive(Clone, Copy, Debug)]
struct Layout {
    fields: [Field; N_KINDS],
    src_v6_last: bool,
    dst_v6_last: bool,
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
    fn get(&self, k: Kind) -> Field {
        self.fields.get(k as usize).copied().unwrap_or_default()
    }

    #[inline]
    fn set(&mut self, k: Kind, f: Field) {
        match k {
            Kind::SrcV4 | Kind::SrcV6 => self.src_v6_last = k == Kind::SrcV6,
            Kind::DstV4 | Kind::DstV6 => self.dst_v6_last = k == Kind::DstV6,
            _ => {}
        }
        if let Some(slot) = self.fields.get_mut(k as usize) {
            *slot = f;
        }
    }

    fn from_ops(ops: &[Op]) -> Self {
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
fn field_bytes(rec: &[u8], f: Field) -> Option<&[u8]> {
    if f.len == 0 {
        return None;
    }
    let start = usize::from(f.off);
    rec.get(start..start + usize::from(f.len))
}

/// IANA private enterprise number of RFC 5103 reverse information elements.
const PEN_REVERSE: u32 = 29305;

fn kind_of(ie: u16, pen: u32, len: u16) -> Kind {
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
struct Scratch<'a> {
    rec: FlowRecord,
    first_up: Option<u32>,
    last_up: Option<u32>,
    start_abs: Option<i64>,
    end_abs: Option<i64>,
    start_delta_us: Option<u64>,
    end_delta_us: Option<u64>,
    system_init_ms: Option<i64>,
    bytes_total: u64,
    packets_total: u64,
    sampling: u32,
    packet_interval: u64,
    packet_space: u64,
    sampling_size: u64,
    sampling_population: u64,
    sampler_id: Option<u64>,
    icmp_set: bool,
    scope_interface: Option<u32>,
    interface_name: &'a [u8],
}

const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

fn ntp_to_ms(v: u64) -> i64 {
    let secs = (v >> 32).cast_signed() - NTP_UNIX_OFFSET_S;
    let frac_ms = ((v & 0xffff_ffff) * 1000) >> 32;
    secs * 1000 + frac_ms.cast_signed()
}

#[inline]
fn set_addr(slot: &mut IpAddr, value: IpAddr) {
    if !value.is_unspecified() || slot.is_unspecified() {
        *slot = value;
    }
}

#[inline]
fn apply<'a>(kind: Kind, b: &'a [u8], s: &mut Scratch<'a>) {
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

/// The header context a data set is decoded in.
#[derive(Clone, Copy, Debug)]
struct SetCtx {
    key: DomainKey,
    export_ms: i64,
    /// NetFlow v9 only: the header's sysUpTime.
    sys_uptime: u32,
    received_ms: i64,
}

#[derive(Debug)]
struct Pending {
    ctx: SetCtx,
    template_id: u16,
    body: Box<[u8]>,
}

/// The NetFlow v9 / IPFIX decoder: template cache, options state, and pending data.
#[derive(Debug, Default)]
pub struct TemplateDecoder {
    limits: TemplateLimits,
    /// Reused while compiling templates: a re-sent, unchanged template allocates nothing.
    scratch: Vec<Op>,
    domains: FxHashMap<DomainKey, Domain>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
}

impl DatagramDecoder for TemplateDecoder {
    fn decode(&mut self, datagram: Datagram<'_>, batch: &mut FlowBatch) {
        if let Err(a) = self.decode_datagram(datagram, batch) {
            batch.count(a);
        }
    }
}

impl TemplateDecoder {
    /// A decoder with the given bounds.
    pub fn with_limits(limits: TemplateLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Templates currently cached, over all exporters.
    pub fn template_count(&self) -> usize {
        self.domains.values().map(|d| d.templates.len()).sum()
    }

    /// Data sets buffered while waiting for their template.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The sampling rate an exporter announced in options data without a sampler id.
    pub fn sampling_rate(&self, exporter: IpAddr, domain: u32, version: u16) -> Option<u32> {
        self.domains
            .get(&DomainKey {
                exporter,
                domain,
                version,
            })
            .map(|d| d.opts.default_sampling)
            .filter(|r| *r > 0)
    }

    /// The name an exporter gave an interface index in options data (IE 82).
    pub fn interface_name(
        &self,
        exporter: IpAddr,
        domain: u32,
        version: u16,
        if_index: u32,
    ) -> Option<&str> {
        self.domains
            .get(&DomainKey {
                exporter,
                domain,
                version,
            })
            .and_then(|d| d.opts.interface_names.get(&if_index))
            .map(|n| &**n)
    }

    /// Forgets templates not refreshed within the TTL and buffered data older than the
    /// pending TTL, as of `now_ms` (the caller's clock).
    pub fn expire(&mut self, now_ms: i64) -> Expired {
        let mut out = Expired::default();
        if self.limits.template_ttl_ms > 0 {
            let ttl = self.limits.template_ttl_ms;
            for d in self.domains.values_mut() {
                let before = d.templates.len();
                d.templates
                    .retain(|_, t| now_ms.saturating_sub(t.refreshed_ms) <= ttl);
                out.templates += before - d.templates.len();
            }
        }
        let ttl = self.limits.pending_ttl_ms;
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|p| {
            let keep = now_ms.saturating_sub(p.ctx.received_ms) <= ttl;
            if !keep {
                freed += p.body.len();
            }
            keep
        });
        self.pending_bytes -= freed;
        out.pending_sets = before - self.pending.len();
        out
    }

    fn decode_datagram(&mut self, dg: Datagram<'_>, batch: &mut FlowBatch) -> Result<(), Anomaly> {
        let mut r = Reader::new(dg.payload);
        let version = r.u16("export header")?;
        match version {
            9 => {
                let _count = r.u16("netflow v9 header")?;
                let sys_uptime = r.u32("netflow v9 header")?;
                let unix_secs = r.u32("netflow v9 header")?;
                let _sequence = r.u32("netflow v9 header")?;
                let source_id = r.u32("netflow v9 header")?;
                let ctx = SetCtx {
                    key: DomainKey {
                        exporter: dg.exporter,
                        domain: source_id,
                        version,
                    },
                    export_ms: i64::from(unix_secs) * 1000,
                    sys_uptime,
                    received_ms: dg.received_ms,
                };
                // v9 has no message length: flowsets run to the end of the datagram;
                // fewer than 4 trailing bytes are padding.
                while r.remaining() >= 4 {
                    let id = r.u16("netflow v9 flowset header")?;
                    let len = usize::from(r.u16("netflow v9 flowset header")?);
                    let body_len = len.checked_sub(4).ok_or(Anomaly::BadLength {
                        what: "netflow v9 flowset",
                    })?;
                    let body = r.sub(body_len, "netflow v9 flowset")?;
                    match id {
                        0 => self.template_set(ctx, body, false, batch),
                        1 => self.v9_options_template_set(ctx, body, batch),
                        2..=255 => {}
                        _ => self.data_set(ctx, id, body.rest(), batch),
                    }
                }
                Ok(())
            }
            10 => {
                let len = usize::from(r.u16("ipfix message header")?);
                let export_time = r.u32("ipfix message header")?;
                let _sequence = r.u32("ipfix message header")?;
                let domain = r.u32("ipfix message header")?;
                let body_len = len.checked_sub(16).ok_or(Anomaly::BadLength {
                    what: "ipfix message",
                })?;
                let mut r = r.sub(body_len, "ipfix message")?;
                let ctx = SetCtx {
                    key: DomainKey {
                        exporter: dg.exporter,
                        domain,
                        version,
                    },
                    export_ms: i64::from(export_time) * 1000,
                    sys_uptime: 0,
                    received_ms: dg.received_ms,
                };
                while !r.is_empty() {
                    let id = r.u16("ipfix set header")?;
                    let len = usize::from(r.u16("ipfix set header")?);
                    let body_len = len
                        .checked_sub(4)
                        .ok_or(Anomaly::BadLength { what: "ipfix set" })?;
                    let body = r.sub(body_len, "ipfix set")?;
                    match id {
                        2 => self.template_set(ctx, body, true, batch),
                        3 => self.ipfix_options_template_set(ctx, body, batch),
                        0..=255 => {}
                        _ => self.data_set(ctx, id, body.rest(), batch),
                    }
                }
                Ok(())
            }
            version => Err(Anomaly::UnsupportedVersion { version }),
        }
    }

    /// A (v9 flowset 0 / IPFIX set 2) template set.
    fn template_set(
        &mut self,
        ctx: SetCtx,
        mut body: Reader<'_>,
        ipfix: bool,
        batch: &mut FlowBatch,
    ) {
        while body.remaining() >= 4 {
            let (Ok(template_id), Ok(count)) = (
                body.u16("template record header"),
                body.u16("template record header"),
            ) else {
                return;
            };
            if count == 0 {
                if ipfix {
                    self.withdraw(ctx.key, template_id, 2);
                    continue;
                }
                batch.count(Anomaly::TemplateRejected {
                    template_id,
                    reason: "no fields",
                });
                return;
            }
            let fields = Fields {
                count: usize::from(count),
                scope: 0,
                ipfix,
                options: false,
            };
            if !self.compile(ctx, &mut body, template_id, fields, batch) {
                return;
            }
        }
    }

    /// An IPFIX options template set (set id 3).
    fn ipfix_options_template_set(
        &mut self,
        ctx: SetCtx,
        mut body: Reader<'_>,
        batch: &mut FlowBatch,
    ) {
        while body.remaining() >= 4 {
            let (Ok(template_id), Ok(count)) = (
                body.u16("options template record header"),
                body.u16("options template record header"),
            ) else {
                return;
            };
            if count == 0 {
                self.withdraw(ctx.key, template_id, 3);
                continue;
            }
            let Ok(scope) = body.u16("options template record header") else {
                batch.count(Anomaly::Truncated {
                    what: "options template record header",
                });
                return;
            };
            let fields = Fields {
                count: usize::from(count),
                scope: usize::from(scope),
                ipfix: true,
                options: true,
            };
            if !self.compile(ctx, &mut body, template_id, fields, batch) {
                return;
            }
        }
    }

    /// A NetFlow v9 options template flowset (flowset id 1): lengths are in bytes, and
    /// scope fields are scope types (1 system, 2 interface, 3 line card, 4 cache, 5 template).
    fn v9_options_template_set(
        &mut self,
        ctx: SetCtx,
        mut body: Reader<'_>,
        batch: &mut FlowBatch,
    ) {
        while body.remaining() >= 6 {
            let (Ok(template_id), Ok(scope_len), Ok(opt_len)) = (
                body.u16("v9 options template header"),
                body.u16("v9 options template header"),
                body.u16("v9 options template header"),
            ) else {
                return;
            };
            let (scope, options) = (usize::from(scope_len / 4), usize::from(opt_len / 4));
            if scope_len % 4 != 0 || opt_len % 4 != 0 {
                batch.count(Anomaly::TemplateRejected {
                    template_id,
                    reason: "options lengths not a multiple of 4",
                });
                return;
            }
            let fields = Fields {
                count: scope + options,
                scope,
                ipfix: false,
                options: true,
            };
            if !self.compile(ctx, &mut body, template_id, fields, batch) {
                return;
            }
        }
    }

    /// Reads and installs one template record; `false` if it was refused (the rest of
    /// the set cannot be trusted then).
    fn compile(
        &mut self,
        ctx: SetCtx,
        body: &mut Reader<'_>,
        template_id: u16,
        fields: Fields,
        batch: &mut FlowBatch,
    ) -> bool {
        let mut ops = std::mem::take(&mut self.scratch);
        let ok = match read_fields(body, fields, &self.limits, &mut ops) {
            Ok(shape) => {
                self.install(ctx, template_id, fields.options, shape, &ops, batch);
                true
            }
            Err(a) => {
                batch.count(a.with_id(template_id));
                false
            }
        };
        self.scratch = ops;
        ok
    }

    fn withdraw(&mut self, key: DomainKey, template_id: u16, set_id: u16) {
        if let Some(d) = self.domains.get_mut(&key) {
            if template_id == set_id {
                // RFC 7011 §8.1: the set id as template id withdraws all of that kind.
                let options = set_id == 3;
                d.templates.retain(|_, t| t.options != options);
            } else {
                d.templates.remove(&template_id);
            }
        }
    }

    fn install(
        &mut self,
        ctx: SetCtx,
        template_id: u16,
        options: bool,
        (fixed_len, min_len): (Option<usize>, usize),
        ops: &[Op],
        batch: &mut FlowBatch,
    ) {
        if template_id < 256 {
            batch.count(Anomaly::TemplateRejected {
                template_id,
                reason: "template id below 256",
            });
            return;
        }
        if !self.domains.contains_key(&ctx.key) && self.domains.len() >= self.limits.max_domains {
            batch.count(Anomaly::TemplateLimit);
            return;
        }
        let domain = self.domains.entry(ctx.key).or_default();
        if let Some(t) = domain.templates.get_mut(&template_id)
            && t.options == options
            && t.fixed_len == fixed_len
            && t.min_len == min_len
            && *t.ops == *ops
        {
            // Exporters re-send templates periodically: refresh, keep the compiled one.
            t.refreshed_ms = ctx.received_ms;
            return;
        }
        if !domain.templates.contains_key(&template_id)
            && domain.templates.len() >= self.limits.max_templates_per_domain
        {
            batch.count(Anomaly::TemplateLimit);
            return;
        }
        domain.templates.insert(
            template_id,
            Template {
                refreshed_ms: ctx.received_ms,
                options,
                fixed_len,
                plan: if fixed_len.is_some() {
                    Plan::new(&Layout::from_ops(ops))
                } else {
                    Plan::default()
                },
                ops: ops.into(),
                min_len,
            },
        );
        self.replay_pending(ctx.key, template_id, batch);
    }

    fn replay_pending(&mut self, key: DomainKey, template_id: u16, batch: &mut FlowBatch) {
        if self.pending.is_empty() {
            return;
        }
        let (ready, waiting): (VecDeque<Pending>, VecDeque<Pending>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.ctx.key == key && p.template_id == template_id);
        self.pending = waiting;
        for p in ready {
            self.pending_bytes -= p.body.len();
            self.data_set(p.ctx, p.template_id, &p.body, batch);
        }
    }

    fn buffer_pending(
        &mut self,
        ctx: SetCtx,
        template_id: u16,
        body: &[u8],
        batch: &mut FlowBatch,
    ) {
        batch.count(Anomaly::UnknownTemplate { template_id });
        if self.pending.len() >= self.limits.max_pending_sets
            || self.pending_bytes + body.len() > self.limits.max_pending_bytes
        {
            batch.count(Anomaly::PendingDropped {
                reason: "pending buffer full",
            });
            return;
        }
        self.pending_bytes += body.len();
        self.pending.push_back(Pending {
            ctx,
            template_id,
            body: body.into(),
        });
    }

    fn data_set(&mut self, ctx: SetCtx, template_id: u16, body: &[u8], batch: &mut FlowBatch) {
        let ttl = self.limits.template_ttl_ms;
        if let Some(Domain { templates, opts }) = self.domains.get_mut(&ctx.key) {
            match templates.get(&template_id) {
                Some(t) if ttl <= 0 || ctx.received_ms.saturating_sub(t.refreshed_ms) <= ttl => {
                    if t.options {
                        decode_options(t, body, opts, &self.limits, batch);
                    } else {
                        decode_data(ctx, t, body, opts, batch);
                    }
                    return;
                }
                // Expired: forget it, and treat the data as arriving before its template.
                Some(_) => {
                    templates.remove(&template_id);
                }
                None => {}
            }
        }
        self.buffer_pending(ctx, template_id, body, batch);
    }
}

impl Anomaly {
    fn with_id(self, id: u16) -> Anomaly {
        match self {
            Anomaly::TemplateRejected { reason, .. } => Anomaly::TemplateRejected {
                template_id: id,
                reason,
            },
            other => other,
        }
    }
}

/// The shape of a template record's field list.
#[derive(Clone, Copy, Debug)]
struct Fields {
    count: usize,
    scope: usize,
    ipfix: bool,
    options: bool,
}

/// Reads `count` field specifiers and compiles them into `all`; returns the fixed record
/// length (if no field is variable-length) and the minimum record length. The first
/// `scope` are options scope fields (v9: scope types; IPFIX: ordinary IEs).
fn read_fields(
    r: &mut Reader<'_>,
    spec: Fields,
    limits: &TemplateLimits,
    all: &mut Vec<Op>,
) -> Result<(Option<usize>, usize), Anomaly> {
    let Fields {
        count,
        scope,
        ipfix,
        options,
    } = spec;
    if count > limits.max_fields_per_template {
        return Err(Anomaly::TemplateRejected {
            template_id: 0,
            reason: "too many fields",
        });
    }
    all.clear();
    let mut fixed = true;
    let mut off: usize = 0;
    let mut min_len: usize = 0;
    for i in 0..count {
        let mut ie = r.u16("template field specifier")?;
        let len = r.u16("template field specifier")?;
        let mut pen = 0;
        if ipfix && ie & 0x8000 != 0 {
            ie &= 0x7fff;
            pen = r.u32("template enterprise number")?;
        }
        let varlen = ipfix && len == VARLEN;
        let kind = if i < scope && !ipfix {
            if ie == 2 {
                Kind::ScopeInterface
            } else {
                Kind::Skip
            }
        } else if i < scope && ie == 10 {
            Kind::ScopeInterface
        } else {
            let k = kind_of(ie, pen, if varlen { 0 } else { len });
            match k {
                Kind::InterfaceName if !options => Kind::Skip,
                Kind::InterfaceName => Kind::InterfaceName,
                _ if varlen => Kind::Skip,
                k => k,
            }
        };
        if varlen {
            fixed = false;
            min_len += 1;
        } else {
            min_len += usize::from(len);
        }
        let op_off = u16::try_from(off).unwrap_or(u16::MAX);
        all.push(Op {
            off: op_off,
            len: if varlen { VARLEN } else { len },
            kind,
        });
        if !varlen {
            off += usize::from(len);
        }
    }
    if min_len == 0 {
        return Err(Anomaly::TemplateRejected {
            template_id: 0,
            reason: "zero-length records",
        });
    }
    if fixed {
        // The record length of a fixed template fits a set (u16) or the template is useless.
        if u16::try_from(off).is_err() {
            return Err(Anomaly::TemplateRejected {
                template_id: 0,
                reason: "record longer than a set",
            });
        }
        all.retain(|op| op.kind != Kind::Skip);
        Ok((Some(off), min_len))
    } else {
        Ok((None, min_len))
    }
}

/// Runs `f` over each record of a data set: fixed templates by offset, variable ones by
/// walking every field. Stops (and counts) at the first truncated record.
#[inline]
fn for_each_record<'a>(
    t: &Template,
    body: &'a [u8],
    batch: &mut FlowBatch,
    mut f: impl FnMut(&mut Scratch<'a>, &mut FlowBatch),
) {
    let mut r = Reader::new(body);
    if let Some(len) = t.fixed_len {
        while r.remaining() >= len {
            let Some(rec) = r.take(len) else { break };
            let mut s = Scratch::default();
            for op in &t.ops {
                let start = usize::from(op.off);
                if let Some(b) = rec.get(start..start + usize::from(op.len)) {
                    apply(op.kind, b, &mut s);
                }
            }
            f(&mut s, batch);
        }
        return;
    }
    'records: while r.remaining() >= t.min_len {
        let mut s = Scratch::default();
        for op in &t.ops {
            let len = if op.len == VARLEN {
                let Ok(short) = r.u8("variable-length field") else {
                    batch.count(Anomaly::Truncated {
                        what: "variable-length field",
                    });
                    break 'records;
                };
                if short == 255 {
                    let Ok(long) = r.u16("variable-length field") else {
                        batch.count(Anomaly::Truncated {
                            what: "variable-length field",
                        });
                        break 'records;
                    };
                    usize::from(long)
                } else {
                    usize::from(short)
                }
            } else {
                usize::from(op.len)
            };
            let Some(b) = r.take(len) else {
                batch.count(Anomaly::Truncated {
                    what: "data record",
                });
                break 'records;
            };
            apply(op.kind, b, &mut s);
        }
        f(&mut s, batch);
    }
}

fn decode_data(ctx: SetCtx, t: &Template, body: &[u8], opts: &OptionsState, batch: &mut FlowBatch) {
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
    'records: while r.remaining() >= t.min_len {
        let rest = r.rest();
        let mut layout = Layout::default();
        let mut off = 0usize;
        for op in &t.ops {
            let len = if op.len == VARLEN {
                let (Ok(short), prefix) = (r.u8("variable-length field"), 1) else {
                    batch.count(Anomaly::Truncated {
                        what: "variable-length field",
                    });
                    break 'records;
                };
                let (len, prefix) = if short == 255 {
                    let Ok(long) = r.u16("variable-length field") else {
                        batch.count(Anomaly::Truncated {
                            what: "variable-length field",
                        });
                        break 'records;
                    };
                    (usize::from(long), prefix + 2)
                } else {
                    (usize::from(short), prefix)
                };
                off += prefix;
                len
            } else {
                usize::from(op.len)
            };
            if r.take(len).is_none() {
                batch.count(Anomaly::Truncated {
                    what: "data record",
                });
                break 'records;
            }
            if let (Ok(o), Ok(l)) = (u16::try_from(off), u16::try_from(len)) {
                layout.set(op.kind, Field { off: o, len: l });
            }
            off += len;
        }
        let rec = rest.get(..off).unwrap_or_default();
        batch
            .records
            .push(extract(rec, &Plan::new(&layout), ctx, opts, source));
    }
}

#[inline(always)]
fn address(rec: &[u8], v4: Field, v6: Field, v6_last: bool) -> IpAddr {
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
enum TimeSource {
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
enum SamplingSource {
    /// What options data said for the whole (exporter, domain).
    #[default]
    Domain,
    Interval,
    Rfc5477,
    Sampler,
}

/// Where ICMP type and code come from, chosen once per template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum IcmpSource {
    /// Exporters without ICMP fields put type and code in the destination port.
    #[default]
    DstPort,
    TypeCode,
    Split,
}

/// The numeric values a record can carry, each read into one slot of a per-record array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Slot {
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

const N_SLOTS: usize = Slot::SamplerId as usize + 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NumOp {
    off: u16,
    len: u16,
    slot: u8,
    /// Fields of 1 to 8 bytes ending at least 8 bytes into the record are read as the
    /// big-endian `u64` that ends where they end, masked to their width: one load, no
    /// branch on the width.
    wide: bool,
    mask: u64,
}

/// A data template compiled for decoding: the offsets of the numeric fields it has (and
/// only those), the address fields, and, decided once, where times, sampling and ICMP
/// come from. Per record: one short loop of reads into an array, then fixed assembly.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    src_v4: Field,
    src_v6: Field,
    src_v6_last: bool,
    dst_v4: Field,
    dst_v6: Field,
    dst_v6_last: bool,
    nums: [NumOp; N_SLOTS],
    n_nums: usize,
    has_direction: bool,
    has_system_init: bool,
    icmp: IcmpSource,
    start: TimeSource,
    end: TimeSource,
    sampling: SamplingSource,
}

fn present(f: Field) -> Option<Field> {
    (f.len != 0).then_some(f)
}

impl Plan {
    fn new(l: &Layout) -> Plan {
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
fn extract(
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
fn rate_from(interval: u64, space: u64, size: u64, population: u64) -> Option<u32> {
    let rate = population
        .checked_div(size)
        .filter(|r| *r > 0)
        .or_else(|| interval.checked_add(space)?.checked_div(interval))?;
    Some(u32::try_from(rate).unwrap_or(u32::MAX)).filter(|r| *r > 0)
}

/// A sampling rate carried in an (options) record itself.
fn explicit_rate(s: &Scratch<'_>) -> Option<u32> {
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

const MAX_NAME_LEN: usize = 64;

fn decode_options(
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

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    fn ipfix(sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let body: usize = sets.iter().map(|(_, b)| b.len() + 4).sum();
        let mut m = Vec::new();
        m.extend_from_slice(&10u16.to_be_bytes());
        m.extend_from_slice(&u16::try_from(16 + body).expect("small").to_be_bytes());
        m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&7u32.to_be_bytes());
        for (id, b) in sets {
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&u16::try_from(b.len() + 4).expect("small").to_be_bytes());
            m.extend_from_slice(b);
        }
        m
    }

    fn words(ws: &[u16]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// Template 256: sourceIPv4Address, a variable-length enterprise field, packetDeltaCount(4).
    fn template_256() -> Vec<u8> {
        let mut t = words(&[256, 3, 8, 4, 0x8000 | 99, 0xffff]);
        t.extend_from_slice(&12345u32.to_be_bytes());
        t.extend_from_slice(&words(&[2, 4]));
        t
    }

    fn record_256(ip: [u8; 4], opaque: &[u8], packets: u32) -> Vec<u8> {
        let mut r = ip.to_vec();
        r.push(u8::try_from(opaque.len()).expect("short"));
        r.extend_from_slice(opaque);
        r.extend_from_slice(&packets.to_be_bytes());
        r
    }

    #[test]
    fn variable_length_enterprise_fields_are_skipped() {
        let mut d = TemplateDecoder::default();
        let mut b = FlowBatch::default();
        let mut data = record_256([10, 0, 0, 1], b"xyz", 5);
        data.extend(record_256([10, 0, 0, 2], b"", 6));
        let msg = ipfix(&[(2, template_256()), (256, data)]);
        d.decode(Datagram::new(EXPORTER, 0, &msg), &mut b);
        assert_eq!(b.anomalies.total(), 0, "{:?}", b.anomalies.last());
        let got: Vec<_> = b.records.iter().map(|r| (r.src_addr, r.packets)).collect();
        assert_eq!(
            got,
            [
                (IpAddr::from([10, 0, 0, 1]), 5),
                (IpAddr::from([10, 0, 0, 2]), 6)
            ]
        );
    }

    #[test]
    fn data_before_template_is_buffered_then_replayed() {
        let mut d = TemplateDecoder::default();
        let mut b = FlowBatch::default();
        let data = ipfix(&[(256, record_256([10, 0, 0, 1], b"", 5))]);
        d.decode(Datagram::new(EXPORTER, 0, &data), &mut b);
        assert!(b.is_empty());
        assert_eq!(d.pending_count(), 1);
        d.decode(
            Datagram::new(EXPORTER, 10, &ipfix(&[(2, template_256())])),
            &mut b,
        );
        assert_eq!(b.len(), 1);
        assert_eq!(d.pending_count(), 0);
        assert_eq!(
            b.anomalies.last(),
            Some(Anomaly::UnknownTemplate { template_id: 256 })
        );
    }

    #[test]
    fn withdrawal_and_expiry_forget_templates() {
        let mut d = TemplateDecoder::default();
        let mut b = FlowBatch::default();
        d.decode(
            Datagram::new(EXPORTER, 0, &ipfix(&[(2, template_256())])),
            &mut b,
        );
        assert_eq!(d.template_count(), 1);
        d.decode(
            Datagram::new(EXPORTER, 0, &ipfix(&[(2, words(&[256, 0]))])),
            &mut b,
        );
        assert_eq!(d.template_count(), 0);

        d.decode(
            Datagram::new(EXPORTER, 0, &ipfix(&[(2, template_256())])),
            &mut b,
        );
        let ttl = TemplateLimits::default().template_ttl_ms;
        assert_eq!(d.expire(ttl).templates, 0);
        assert_eq!(d.expire(ttl + 1).templates, 1);
    }

    #[test]
    fn zero_length_and_oversized_templates_are_rejected() {
        let mut d = TemplateDecoder::with_limits(TemplateLimits {
            max_fields_per_template: 2,
            ..TemplateLimits::default()
        });
        let mut b = FlowBatch::default();
        d.decode(
            Datagram::new(EXPORTER, 0, &ipfix(&[(2, words(&[300, 1, 8, 0]))])),
            &mut b,
        );
        d.decode(
            Datagram::new(EXPORTER, 0, &ipfix(&[(2, template_256())])),
            &mut b,
        );
        assert_eq!(d.template_count(), 0);
        assert_eq!(b.anomalies.get(crate::AnomalyKind::TemplateRejected), 2);
    }

    #[test]
    fn template_limit_per_domain_holds() {
        let mut d = TemplateDecoder::with_limits(TemplateLimits {
            max_templates_per_domain: 2,
            ..TemplateLimits::default()
        });
        let mut b = FlowBatch::default();
        for id in 256..260u16 {
            d.decode(
                Datagram::new(EXPORTER, 0, &ipfix(&[(2, words(&[id, 1, 8, 4]))])),
                &mut b,
            );
        }
        assert_eq!(d.template_count(), 2);
        assert_eq!(b.anomalies.get(crate::AnomalyKind::TemplateLimit), 2);
    }

    #[test]
    fn ntp_timestamps_convert_to_unix_ms() {
        // 2024-01-01T00:00:00.5Z in NTP: seconds since 1900, half a second of fraction.
        let secs = 1_704_067_200u64 + 2_208_988_800;
        assert_eq!(ntp_to_ms((secs << 32) | 0x8000_0000), 1_704_067_200_500);
    }
}
