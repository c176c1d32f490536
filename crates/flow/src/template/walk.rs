//! Template records and the one record walker: compiling field specifiers (`read_fields`)
//! and walking the records of a set, fixed-length by offset or variable-length field by
//! field (`for_each_record`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::*;

/// The shape of a template record's field list.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fields {
    pub(super) count: usize,
    pub(super) scope: usize,
    pub(super) ipfix: bool,
    pub(super) options: bool,
}

/// Reads `count` field specifiers and compiles them into `all`; returns the fixed record
/// length (if no field is variable-length) and the minimum record length. The first
/// `scope` are options scope fields (v9: scope types; IPFIX: ordinary IEs).
pub(super) fn read_fields(
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
pub(super) fn for_each_record<'a>(
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
    while r.remaining() >= t.min_len {
        let mut s = Scratch::default();
        if walk_fields(&mut r, &t.ops, batch, |kind, _, b| apply(kind, b, &mut s)).is_none() {
            break;
        }
        f(&mut s, batch);
    }
}

/// The one variable-length walker: reads the fields of one record at `r`'s position,
/// calling `f(kind, offset in the record, bytes)` for each, and returns the record's
/// length. A truncated length prefix or field is counted and ends the walk with `None`
/// (the caller stops at the first truncated record).
#[inline]
pub(super) fn walk_fields<'a>(
    r: &mut Reader<'a>,
    ops: &[Op],
    batch: &mut FlowBatch,
    mut f: impl FnMut(Kind, usize, &'a [u8]),
) -> Option<usize> {
    let mut off = 0usize;
    for op in ops {
        let len = if op.len == VARLEN {
            let Ok(short) = r.u8("variable-length field") else {
                batch.count(Anomaly::Truncated {
                    what: "variable-length field",
                });
                return None;
            };
            off += 1;
            if short == 255 {
                let Ok(long) = r.u16("variable-length field") else {
                    batch.count(Anomaly::Truncated {
                        what: "variable-length field",
                    });
                    return None;
                };
                off += 2;
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
            return None;
        };
        f(op.kind, off, b);
        off += len;
    }
    Some(off)
}
