//! The one interface every export decoder implements, and the version dispatcher.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

use crate::anomaly::Anomaly;
use crate::netflow_v5::NetflowV5Decoder;
use crate::record::FlowBatch;
use crate::sflow::SflowDecoder;
use crate::template::{TemplateDecoder, TemplateLimits};

/// One export datagram as the collector received it.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// The exporter's address (the UDP source), part of every template-cache key.
    pub exporter: IpAddr,
    /// When the datagram was received, UTC ms: the caller's clock, used for template
    /// expiry only (decoders never read a clock).
    pub received_ms: i64,
    /// The UDP payload.
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// A datagram from `exporter`, received at `received_ms`.
    pub fn new(exporter: IpAddr, received_ms: i64, payload: &'a [u8]) -> Self {
        Self {
            exporter,
            received_ms,
            payload,
        }
    }
}

/// A decoder of export datagrams: pushes every record it can decode into `batch` and
/// counts every anomaly there. Never panics, never allocates per record (the batch's
/// buffer is reused), never reads a clock.
pub trait DatagramDecoder {
    /// Decodes one datagram into `batch`.
    fn decode(&mut self, datagram: Datagram<'_>, batch: &mut FlowBatch);
}

/// NetFlow v5, NetFlow v9, IPFIX and sFlow v5 on one port: dispatches on the version
/// field (16 bits for NetFlow/IPFIX; sFlow's is 32 bits, `0x00000005`).
#[derive(Debug, Default)]
pub struct ExportDecoder {
    v5: NetflowV5Decoder,
    templates: TemplateDecoder,
    /// The sFlow decoder (its VXLAN option can be set here).
    pub sflow: SflowDecoder,
}

impl ExportDecoder {
    /// A decoder whose template cache uses `limits`.
    pub fn with_limits(limits: TemplateLimits) -> Self {
        Self {
            v5: NetflowV5Decoder,
            templates: TemplateDecoder::with_limits(limits),
            sflow: SflowDecoder::default(),
        }
    }

    /// The NetFlow v9 / IPFIX template cache and options state.
    pub fn templates(&self) -> &TemplateDecoder {
        &self.templates
    }

    /// Mutable access to the template cache (expiry).
    pub fn templates_mut(&mut self) -> &mut TemplateDecoder {
        &mut self.templates
    }
}

impl DatagramDecoder for ExportDecoder {
    fn decode(&mut self, datagram: Datagram<'_>, batch: &mut FlowBatch) {
        if datagram.payload.first_chunk::<4>() == Some(&[0, 0, 0, 5]) {
            return self.sflow.decode(datagram, batch);
        }
        match datagram
            .payload
            .first_chunk::<2>()
            .map(|v| u16::from_be_bytes(*v))
        {
            Some(5) => self.v5.decode(datagram, batch),
            Some(9 | 10) => self.templates.decode(datagram, batch),
            Some(version) => batch.count(Anomaly::UnsupportedVersion { version }),
            None => batch.count(Anomaly::Truncated {
                what: "export header",
            }),
        }
    }
}

/// Converts a router `sysUpTime` stamp (ms since boot) to UTC ms, given the export
/// header's wall time and uptime. The difference is taken as a signed 32-bit value so
/// that uptime wrap-around (every 49.7 days) and stamps slightly after export both work.
#[inline]
pub(crate) fn uptime_to_utc_ms(export_ms: i64, sys_uptime: u32, stamp: u32) -> i64 {
    export_ms - i64::from(sys_uptime.wrapping_sub(stamp).cast_signed())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn uptime_conversion_survives_wraparound() {
        assert_eq!(uptime_to_utc_ms(10_000, 5_000, 4_000), 9_000);
        // Router rebooted its counter: uptime 100 ms, flow started 200 ms before the wrap.
        assert_eq!(uptime_to_utc_ms(10_000, 100, u32::MAX - 199), 9_700);
        // A stamp just after the export time.
        assert_eq!(uptime_to_utc_ms(10_000, 5_000, 5_010), 10_010);
    }

    #[test]
    fn sflow_is_recognised_by_its_32_bit_version() {
        let mut d = ExportDecoder::default();
        let mut b = FlowBatch::default();
        // An sFlow v5 header with an IPv4 agent and no samples.
        let sflow = [
            0, 0, 0, 5, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0,
        ];
        d.decode(
            Datagram::new(IpAddr::from([192, 0, 2, 1]), 0, &sflow),
            &mut b,
        );
        assert_eq!(b.anomalies.total(), 0);
        // The same bytes with version 4 are not sFlow v5.
        let mut v4 = sflow;
        v4[3] = 4;
        d.decode(Datagram::new(IpAddr::from([192, 0, 2, 1]), 0, &v4), &mut b);
        assert_eq!(
            b.anomalies.last(),
            Some(Anomaly::UnsupportedVersion { version: 0 })
        );
    }

    #[test]
    fn unknown_versions_and_empty_datagrams_are_counted() {
        let mut d = ExportDecoder::default();
        let mut b = FlowBatch::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        d.decode(Datagram::new(ip, 0, &[0, 7, 0, 0]), &mut b);
        d.decode(Datagram::new(ip, 0, &[0]), &mut b);
        assert_eq!(b.anomalies.total(), 2);
        assert!(b.is_empty());
    }
}
