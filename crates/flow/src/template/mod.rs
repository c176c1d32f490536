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

mod data;
mod field;
mod walk;

use self::data::*;
use self::field::*;
use self::walk::*;

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

    /// The shared variable-length walker: the 3-byte length form (255, then a u16)
    /// puts the fields after it at the right offset.
    #[test]
    fn long_variable_length_prefix_is_walked() {
        let mut d = TemplateDecoder::default();
        let mut b = FlowBatch::default();
        let opaque = [7u8; 300];
        let mut data = vec![10, 0, 0, 1, 255];
        data.extend_from_slice(&300u16.to_be_bytes());
        data.extend_from_slice(&opaque);
        data.extend_from_slice(&9u32.to_be_bytes());
        let msg = ipfix(&[(2, template_256()), (256, data)]);
        d.decode(Datagram::new(EXPORTER, 0, &msg), &mut b);
        assert_eq!(b.anomalies.total(), 0, "{:?}", b.anomalies.last());
        let got: Vec<_> = b.records.iter().map(|r| (r.src_addr, r.packets)).collect();
        assert_eq!(got, [(IpAddr::from([10, 0, 0, 1]), 9)]);
    }

    /// A variable-length field longer than what is left is counted, never read past, and
    /// the records before it are kept (decoders never panic).
    #[test]
    fn truncated_variable_length_record_is_counted() {
        let mut d = TemplateDecoder::default();
        let mut b = FlowBatch::default();
        let mut data = record_256([10, 0, 0, 1], b"ab", 5);
        data.extend_from_slice(&[10, 0, 0, 2, 200, 1, 2, 3, 4, 5]);
        let msg = ipfix(&[(2, template_256()), (256, data)]);
        d.decode(Datagram::new(EXPORTER, 0, &msg), &mut b);
        assert_eq!(b.len(), 1);
        assert_eq!(b.anomalies.total(), 1);
        assert_eq!(
            b.anomalies.last(),
            Some(Anomaly::Truncated {
                what: "data record"
            })
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
