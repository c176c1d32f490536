//! pcap and pcapng captures (through `pcap-parser`), frame by frame.
//!
//! [`PcapReader`] hands each frame with its UTC time and link type to a closure — the
//! [`crate::FlowMeter`] reduces it to flow metadata at once (CI-3), or, for captures of
//! export datagrams, [`udp_payload`] takes out the datagram for an export decoder. The
//! caller supplies the `io::Read`; this module opens nothing.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::io::Read;
use std::net::IpAddr;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::Error;
use crate::meter::{LinkType, headers};

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time, UTC milliseconds.
    pub ts_ms: i64,
    /// How the frame starts.
    pub link: LinkType,
    /// The captured bytes.
    pub data: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second and offset (pcapng `if_tsresol`, `if_tsoffset`).
    resolution: u64,
    offset: i64,
}

/// Reads pcap or pcapng from any `io::Read`, with bounded buffering.
pub struct PcapReader<'r> {
    inner: Box<dyn PcapReaderIterator + Send + 'r>,
    /// Legacy pcap: one interface; pcapng: one per interface description block.
    interfaces: Vec<Interface>,
    legacy_nanos: bool,
}

impl std::fmt::Debug for PcapReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapReader")
            .field("interfaces", &self.interfaces.len())
            .finish()
    }
}

/// Largest block (frame) accepted: bigger ones stop the read with an error.
const BUFFER: usize = 1 << 20;
/// Interfaces remembered for one pcapng section.
const MAX_INTERFACES: usize = 256;

fn pcap_error<I>(e: &PcapError<I>) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "capture: {}",
            match e {
                PcapError::Eof | PcapError::UnexpectedEof => "unexpected end",
                PcapError::BufferTooSmall => "frame larger than 1 MiB",
                PcapError::ReadError => "read error",
                PcapError::HeaderNotRecognized => "neither pcap nor pcapng",
                _ => "malformed block",
            }
        ),
    ))
}

impl<'r> PcapReader<'r> {
    /// A reader over a pcap or pcapng stream (detected from its first bytes).
    pub fn new<R: Read + Send + 'r>(input: R) -> Result<Self, Error> {
        let inner = pcap_parser::create_reader(BUFFER, input).map_err(|e| pcap_error(&e))?;
        Ok(Self {
            inner,
            interfaces: Vec::new(),
            legacy_nanos: false,
        })
    }

    /// Calls `f` with each frame until the end of the capture; returns the frames read.
    /// Malformed blocks end the read with an error (the capture cannot be resynchronised).
    pub fn for_each_frame(&mut self, mut f: impl FnMut(Frame<'_>)) -> Result<u64, Error> {
        let mut frames = 0u64;
        loop {
            match self.inner.next() {
                Ok((offset, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy_nanos = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                            self.interfaces = vec![Interface {
                                link: LinkType::from_pcap(
                                    u32::try_from(h.network.0).unwrap_or(u32::MAX),
                                ),
                                resolution: if self.legacy_nanos {
                                    1_000_000_000
                                } else {
                                    1_000_000
                                },
                                offset: 0,
                            }];
                        }
                        PcapBlockOwned::Legacy(b) => {
                            if let Some(i) = self.interfaces.first() {
                                let per_ms = (i.resolution / 1000).max(1);
                                let sub_ms =
                                    i64::try_from(u64::from(b.ts_usec) / per_ms).unwrap_or(0);
                                f(Frame {
                                    ts_ms: i64::from(b.ts_sec) * 1000 + sub_ms,
                                    link: i.link,
                                    data: b.data,
                                });
                                frames += 1;
                            }
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => self.interfaces.clear(),
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            if self.interfaces.len() < MAX_INTERFACES {
                                self.interfaces.push(Interface {
                                    link: LinkType::from_pcap(
                                        u32::try_from(idb.linktype.0).unwrap_or(u32::MAX),
                                    ),
                                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                    offset: idb.ts_offset(),
                                });
                            }
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let i = usize::try_from(epb.if_id)
                                .ok()
                                .and_then(|i| self.interfaces.get(i));
                            if let Some(i) = i {
                                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let per_ms = (i.resolution / 1000).max(1);
                                let ts_ms = i.offset.saturating_mul(1000).saturating_add(
                                    i64::try_from(ticks / per_ms).unwrap_or(i64::MAX),
                                );
                                let len = usize::try_from(epb.caplen).unwrap_or(usize::MAX);
                                f(Frame {
                                    ts_ms,
                                    link: i.link,
                                    data: epb.data.get(..len).unwrap_or(epb.data),
                                });
                                frames += 1;
                            }
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            if let Some(i) = self.interfaces.first() {
                                f(Frame {
                                    ts_ms: 0,
                                    link: i.link,
                                    data: spb.data,
                                });
                                frames += 1;
                            }
                        }
                        PcapBlockOwned::NG(_) => {}
                    }
                    self.inner.consume(offset);
                }
                Err(PcapError::Eof) => return Ok(frames),
                Err(PcapError::Incomplete(_)) => {
                    self.inner.refill().map_err(|e| pcap_error(&e))?;
                }
                Err(e) => return Err(pcap_error(&e)),
            }
        }
    }
}

/// The source address, destination port and payload of a UDP datagram in a captured
/// frame — for captures of *flow export* traffic (NetFlow, IPFIX, sFlow), whose payload
/// is flow metadata to hand to an export decoder, not subscriber content.
pub fn udp_payload(link: LinkType, frame: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    let h = headers(link, frame).ok()?;
    if h.protocol != 17 || h.udp_len < 8 {
        return None;
    }
    let end = h.l4_end.checked_add(usize::from(h.udp_len) - 8)?;
    let payload = frame.get(h.l4_end..end.min(frame.len()))?;
    Some((h.src, h.dst_port, payload))
}
