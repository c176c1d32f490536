//! The anonymous relay (PP-12, DESIGN invariant 6; the CEPTOR model): a copy of a bundle
//! that does not identify the organisation that reported it.
//!
//! [`anonymise`] replaces the source's identity objects by the centre's, points every
//! reference at the source (`created_by_ref`, `where_sighted_refs`, any `*_ref(s)`, at any
//! depth) at the centre instead, and scrubs the caller's strings — organisation names,
//! domains, contact details, address ranges — from every text value and every property
//! name but the specification's structural ones (`id`, `type`, `*_ref(s)`, …),
//! recursively, case-insensitively for ASCII.
//!
//! **Terms match as words** ([`replace_word_ci`]): an edge of a term that is an ASCII
//! letter or digit must not touch another one, so an organisation called `Den` is found in
//! "Den's SCADA" and "DEN-01" but not inside "incident", nor a user `mark` inside
//! "object_marking_refs" (`_` separates words). An edge in another script matches
//! anywhere: Japanese writes no spaces between words, so a Japanese name is found as a
//! substring of the text. A scrubbed property name has the term replaced by `redacted`
//! (`x_acme_power_ticket` → `x_redacted_ticket`), numbered `_2`, `_3`… if it would
//! collide with another. A scrub string that is a CIDR block (e.g.
//! `198.51.100.0/24`) also redacts every address inside that block written in text.
//! Observables that *are* a scrubbed value (the source's own domain or address as an
//! `ipv4-addr` / `domain-name` / `url` / `email-addr` object) are dropped with the
//! relationships and sightings that point at them, and reported in
//! [`Anonymised::dropped`].
//!
//! **Attachments:** an `artifact` whose `payload_bin` decodes to UTF-8 text is scrubbed by
//! the same rules and re-encoded, and its `hashes` are dropped when the text changed (they
//! would no longer match); a binary payload (or one that is not valid base64) cannot be
//! searched, so the artifact is dropped and listed in [`Anonymised::dropped`] — unless the
//! caller keeps binaries ([`Options::keep_binary`], for a source that allowed identification).
//!
//! Last, the result is searched: if any scrub string (as a word, in any value or
//! property name other than a well-formed identifier, whose UUID is random hex), any address in a scrubbed block,
//! or any source identity id (anywhere in the serialised copy) is still in it — say,
//! inside an id or a timestamp, which are not rewritten — [`anonymise`] fails instead of
//! returning a copy that leaks. `type` values and the structural property names are not
//! searched: they are the specification's words, not the reporter's.

use crate::bundle::Bundle;
use crate::error::{Error, Location, shorten_str};
use crate::id::{StixId, is_valid_type_name};
use crate::object::{Identity, StixObject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// What scrubbed text is replaced with.
pub const REDACTED: &str = "[redacted]";
/// What a scrubbed property name becomes (property names allow only `[a-z0-9_]`).
const REDACTED_KEY: &str = "redacted";

/// An anonymised copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymised {
    /// The copy.
    pub bundle: Bundle,
    /// Objects left out because they were themselves identifying (source identities are
    /// replaced, not listed here).
    pub dropped: Vec<StixId>,
}

/// How [`anonymise_with`] treats what it cannot search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep artifacts whose payload is binary (not UTF-8 text) instead of dropping them.
    pub keep_binary: bool,
}

/// An artifact's payload: `None` when the object is no artifact with a `payload_bin`,
/// `Some(Err(()))` when the payload is not base64 of UTF-8 text.
fn artifact_text(v: &Value) -> Option<Result<String, ()>> {
    if v.get("type").and_then(Value::as_str) != Some("artifact") {
        return None;
    }
    let b64 = v.get("payload_bin")?.as_str()?;
    Some(
        STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(()),
    )
}

/// Scrubs a text artifact's payload in place (dropping its hashes if the text changed).
fn scrub_artifact(v: &mut Value, s: &Scrubber) {
    let Some(Ok(text)) = artifact_text(v) else {
        return;
    };
    if let Some(clean) = s.scrub(&text, REDACTED)
        && let Some(m) = v.as_object_mut()
    {
        m.insert(
            "payload_bin".to_owned(),
            Value::String(STANDARD.encode(clean)),
        );
        m.remove("hashes");
    }
}

/// The strings to remove, prepared once.
#[derive(Debug, Clone)]
struct Scrubber {
    /// Non-empty terms, longest first (so `Acme Power Co.` goes before `Acme`).
    terms: Vec<String>,
    /// The terms as they would appear in a property name (`acme_power`).
    key_terms: Vec<String>,
    /// Address blocks given as CIDR text.
    ranges: Vec<(IpAddr, u8)>,
    /// The last [`PHONE_KEY_DIGITS`] digits of each term that is a phone number, so that
    /// the number is found however it is written (`+81-3-5555-0100`, `03 5555 0100`).
    phones: Vec<String>,
}

/// How many trailing digits identify a phone number written in another format.
const PHONE_KEY_DIGITS: usize = 8;

fn is_phone_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' ')
}

/// The phone key of a term that is only a phone number (8 digits or more), else `None`.
fn phone_key(t: &str) -> Option<String> {
    if !t.chars().all(is_phone_char) {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let skip = digits.len().checked_sub(PHONE_KEY_DIGITS)?;
    digits.get(skip..).map(str::to_owned)
}

/// `Acme Power Co.` → `acme_power_co`.
fn key_form(t: &str) -> String {
    let mut out = String::new();
    for c in t.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

impl Scrubber {
    fn new(scrub: &[&str]) -> Scrubber {
        let mut terms: Vec<String> = scrub
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        terms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        terms.dedup();
        let ranges = terms.iter().filter_map(|t| parse_cidr(t)).collect();
        let mut phones: Vec<String> = terms.iter().filter_map(|t| phone_key(t)).collect();
        phones.sort();
        phones.dedup();
        // Property names cannot hold spaces or dots: `Acme Power` appears there as
        // `acme_power`.
        let mut key_terms: Vec<String> = terms
            .iter()
            .map(|t| key_form(t))
            .filter(|k| k.len() >= 3 && !terms.contains(k))
            .collect();
        key_terms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        key_terms.dedup();
        Scrubber {
            terms,
            key_terms,
            ranges,
            phones,
        }
    }

    /// A property name with every term (and its property-name form) replaced by `with`.
    fn scrub_key(&self, k: &str, with: &str) -> Option<String> {
        let mut cur = self.scrub(k, with);
        for t in &self.key_terms {
            if let Some(r) = replace_word_ci(cur.as_deref().unwrap_or(k), t, with) {
                cur = Some(r);
            }
        }
        cur
    }

    /// `s` with every term and every in-range address replaced; `None` if unchanged.
    fn scrub(&self, s: &str, with: &str) -> Option<String> {
        let mut cur: Option<String> = None;
        for t in &self.terms {
            let base = cur.as_deref().unwrap_or(s);
            if let Some(r) = replace_word_ci(base, t, with) {
                cur = Some(r);
            }
        }
        if !self.ranges.is_empty() {
            let base = cur.as_deref().unwrap_or(s);
            if let Some(r) = self.redact_addresses(base, with) {
                cur = Some(r);
            }
        }
        if !self.phones.is_empty() {
            let base = cur.as_deref().unwrap_or(s);
            if let Some(r) = self.redact_phones(base, with) {
                cur = Some(r);
            }
        }
        cur
    }

    /// Redacts every run of phone-number characters whose digits end with a registered
    /// number's key: the number in any spacing, punctuation or national/international form.
    fn redact_phones(&self, s: &str, with: &str) -> Option<String> {
        let starts = |c: char| c.is_ascii_digit() || c == '+' || c == '(';
        let mut out = String::with_capacity(s.len());
        let mut hit = false;
        let mut rest = s;
        while let Some(start) = rest.find(starts) {
            let (before, tail) = rest.split_at(start);
            out.push_str(before);
            let len = tail.find(|c: char| !is_phone_char(c)).unwrap_or(tail.len());
            let run = tail.get(..len).unwrap_or_default();
            // The number ends at its last digit; what follows is left as it was.
            let end = run.rfind(|c: char| c.is_ascii_digit()).map_or(0, |i| i + 1);
            let (number, trailing) = run.split_at(end);
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            let matched = digits.len() >= PHONE_KEY_DIGITS
                && self.phones.iter().any(|k| digits.ends_with(k.as_str()));
            if matched {
                out.push_str(with);
                hit = true;
            } else {
                out.push_str(number);
            }
            out.push_str(trailing);
            // `len` ≥ 1: every start character is a phone character.
            rest = tail.get(len..).unwrap_or_default();
        }
        out.push_str(rest);
        hit.then_some(out)
    }

    fn in_range(&self, a: IpAddr) -> bool {
        self.ranges.iter().any(|(net, len)| contains(*net, *len, a))
    }

    fn redact_addresses(&self, s: &str, with: &str) -> Option<String> {
        let is_addr_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
        let mut out = String::with_capacity(s.len());
        let mut hit = false;
        let mut rest = s;
        while let Some(start) = rest.find(is_addr_char) {
            let (before, tail) = rest.split_at(start);
            out.push_str(before);
            let len = tail.find(|c: char| !is_addr_char(c)).unwrap_or(tail.len());
            let (run, after) = tail.split_at(len);
            let trimmed = run.trim_end_matches('.');
            let addr = trimmed.parse::<IpAddr>().ok().filter(|a| self.in_range(*a));
            if addr.is_some() {
                out.push_str(with);
                out.push_str(run.get(trimmed.len()..).unwrap_or_default());
                hit = true;
            } else {
                out.push_str(run);
            }
            rest = after;
        }
        out.push_str(rest);
        hit.then_some(out)
    }

    /// Whether `s` still holds anything this scrubber removes.
    fn leaks(&self, s: &str) -> Option<String> {
        for t in self.terms.iter().chain(&self.key_terms) {
            if replace_word_ci(s, t, "").is_some() {
                return Some(t.clone());
            }
        }
        if !self.ranges.is_empty() && self.redact_addresses(s, "").is_some() {
            return Some("an address in a scrubbed range".to_owned());
        }
        if !self.phones.is_empty() && self.redact_phones(s, "").is_some() {
            return Some("a registered phone number".to_owned());
        }
        None
    }
}

/// Whether two adjacent bytes of a text are inside one word, for [`replace_word_ci`]:
/// both ASCII letters or both ASCII digits, and not a lower-case letter followed by a
/// capital (a camel-case joint, as in `KantoPowerVPN`). A letter beside a digit is a word
/// edge, so a name is still found in host names such as `DEN01` or `01den`.
fn joined(a: u8, b: u8) -> bool {
    (a.is_ascii_alphabetic()
        && b.is_ascii_alphabetic()
        && !(a.is_ascii_lowercase() && b.is_ascii_uppercase()))
        || (a.is_ascii_digit() && b.is_ascii_digit())
}

/// Replaces every occurrence of `term` in `s` **as a word**, ASCII-case-insensitively.
///
/// Each edge of a match must be a word edge in `s` (see [`joined`]): `Den` matches in
/// `Den's SCADA`, `DEN-01`, `DEN01`, `den_scada`, `DenSCADA` and `Denの報告`, but not in
/// `incident`, `Dense` or `DENSE`. An edge that is not an ASCII letter or digit —
/// punctuation, or a letter of a script without spaces between words, such as Japanese —
/// matches wherever it occurs, so a Japanese name is found as a substring (`東京電力` in
/// `東京電力の報告`).
fn replace_word_ci(s: &str, term: &str, with: &str) -> Option<String> {
    let (sb, tb) = (s.as_bytes(), term.as_bytes());
    let (Some(&first), Some(&last)) = (tb.first(), tb.last()) else {
        return None;
    };
    if tb.len() > sb.len() {
        return None;
    }
    let mut out = String::new();
    let (mut i, mut last_end, mut hit) = (0, 0, false);
    while i + tb.len() <= sb.len() {
        let window = sb.get(i..i + tb.len()).unwrap_or_default();
        // The edges are judged on the text's own bytes (their case included).
        let (w_first, w_last) = (
            window.first().copied().unwrap_or(first),
            window.last().copied().unwrap_or(last),
        );
        let open_before = i
            .checked_sub(1)
            .and_then(|j| sb.get(j))
            .is_none_or(|&b| !joined(b, w_first));
        let open_after = sb.get(i + tb.len()).is_none_or(|&b| !joined(w_last, b));
        // A match of a whole UTF-8 term starts and ends on character boundaries, so the
        // `get`s below cannot fail; if they ever did, the text is left as it was.
        if window.eq_ignore_ascii_case(tb)
            && open_before
            && open_after
            && let Some(before) = s.get(last_end..i)
        {
            out.push_str(before);
            out.push_str(with);
            i += tb.len();
            last_end = i;
            hit = true;
            continue;
        }
        i += 1;
    }
    if !hit {
        return None;
    }
    out.push_str(s.get(last_end..).unwrap_or_default());
    Some(out)
}

fn parse_cidr(t: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = t.split_once('/')?;
    let a: IpAddr = a.parse().ok()?;
    let p: u8 = p.parse().ok()?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    (p <= max).then_some((a, p))
}

fn contains(net: IpAddr, len: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

/// Properties whose values are structure, not text: never scrubbed (the final search
/// still covers them).
fn structural(key: &str) -> bool {
    matches!(
        key,
        "id" | "type" | "spec_version" | "created" | "modified" | "payload_bin"
    ) || key.ends_with("_ref")
        || key.ends_with("_refs")
}

/// Rewrites references and scrubs text, recursively.
fn rewrite(
    v: &mut Value,
    key: Option<&str>,
    source: &BTreeSet<&str>,
    centre: &str,
    dropped: &BTreeSet<String>,
    s: &Scrubber,
) {
    let is_ref = key.is_some_and(|k| k.ends_with("_ref") || k.ends_with("_refs"));
    match v {
        Value::String(text) if is_ref && source.contains(text.as_str()) => {
            *text = centre.to_owned();
        }
        Value::String(text) => {
            if !key.is_some_and(structural)
                && let Some(r) = s.scrub(text, REDACTED)
            {
                *text = r;
            }
        }
        Value::Array(items) if is_ref => {
            let mut seen = BTreeSet::new();
            items.retain_mut(|x| {
                if let Value::String(t) = x {
                    if source.contains(t.as_str()) {
                        *t = centre.to_owned();
                    }
                    !dropped.contains(t.as_str()) && seen.insert(t.clone())
                } else {
                    true
                }
            });
        }
        Value::Array(items) => {
            for x in items {
                rewrite(x, key, source, centre, dropped, s);
            }
        }
        Value::Object(m) => {
            let old = std::mem::take(m);
            let mut new = Map::new();
            for (k, mut x) in old {
                // A single reference to a dropped observable goes with it.
                if k.ends_with("_ref") && x.as_str().is_some_and(|t| dropped.contains(t)) {
                    continue;
                }
                rewrite(&mut x, Some(&k), source, centre, dropped, s);
                let k = if StixId::parse(&k).is_ok() || structural(&k) {
                    k // the specification's own names, and extension-definition ids as keys
                } else {
                    s.scrub_key(&k, REDACTED_KEY).unwrap_or(k)
                };
                new.insert(unique_key(&new, k, "_"), x);
            }
            *m = new;
        }
        _ => {}
    }
}

/// `key`, or — when `m` already holds it (two property names that differed only in a
/// scrubbed term) — `key` with `sep` and the first number from 2 that makes it new, so
/// no value is lost.
fn unique_key(m: &Map<String, Value>, key: String, sep: &str) -> String {
    if !m.contains_key(&key) {
        return key;
    }
    (2..)
        .map(|n| format!("{key}{sep}{n}"))
        .find(|k| !m.contains_key(k))
        .unwrap_or(key)
}

/// What of `s`'s terms is still in `v` (see [`anonymise`], step 4): in every text value
/// and property name, matched as words; a well-formed identifier (an `id`, a reference, an
/// id used as a property name) is not searched (its UUID is random hex), and `type` values and the
/// specification's structural property names not at all — the name `Den` is not a trace
/// in `incident--…`, nor `mark` in `object_marking_refs`.
fn leak_in(v: &Value, key: Option<&str>, s: &Scrubber) -> Option<String> {
    leak_at(v, key, 0, s)
}

/// [`leak_in`] at nesting `depth` (0: a property of the object itself).
fn leak_at(v: &Value, key: Option<&str>, depth: usize, s: &Scrubber) -> Option<String> {
    let is_id = |k: &str| k == "id" || k.ends_with("_ref") || k.ends_with("_refs");
    match v {
        // The object's own type; a `type` deeper down may be anyone's text.
        Value::String(t) if key == Some("type") && depth == 0 && is_valid_type_name(t) => None,
        // A well-formed identifier is a type name and a UUID: random hex, no trace (a
        // hex-only name such as `Abe` may occur in it by chance, and must not withhold the
        // copy). Anything else under an id key is searched as text.
        Value::String(t) if key.is_some_and(is_id) && StixId::parse(t).is_ok() => None,
        Value::String(t) => s.leaks(t),
        Value::Array(items) => items.iter().find_map(|x| leak_at(x, key, depth, s)),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let in_key = if StixId::parse(k).is_ok() || structural(k) {
                None
            } else {
                s.leaks(k)
            };
            let inner = if key.is_none() { depth } else { depth + 1 };
            in_key.or_else(|| leak_at(x, Some(k), inner, s))
        }),
        _ => None,
    }
}

/// `text` with every one of `scrub` (names, domains, contact details; a CIDR block also
/// redacts the addresses inside it) replaced by [`REDACTED`], by the same rules as
/// [`anonymise`]: for free text that is shown outside a STIX bundle.
pub fn scrub_text(text: &str, scrub: &[&str]) -> String {
    Scrubber::new(scrub)
        .scrub(text, REDACTED)
        .unwrap_or_else(|| text.to_owned())
}

/// Every text value **and every property name** of free JSON `v` scrubbed of `scrub` by
/// the rules of [`scrub_text`], recursively: a key that names the source is as telling as
/// a value. In a property name the term becomes [`REDACTED`] too
/// (`{"kanto-power.example": …}` → `{"[redacted]": …}`); two names that become the same
/// are told apart by `_2`, `_3`… so no value is lost.
pub fn scrub_json(v: &mut Value, scrub: &[&str]) {
    fn walk(v: &mut Value, s: &Scrubber) {
        match v {
            Value::String(t) => {
                if let Some(r) = s.scrub(t, REDACTED) {
                    *t = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, s)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    walk(&mut x, s);
                    let k = s.scrub_key(&k, REDACTED).unwrap_or(k);
                    m.insert(unique_key(m, k, "_"), x);
                }
            }
            _ => {}
        }
    }
    walk(v, &Scrubber::new(scrub));
}

/// Makes the anonymised copy of `bundle` for redistribution.
///
/// `source` are the reporting organisation's identity ids, `centre` the centre's identity
/// object that takes their place, `scrub` the strings to remove, and `bundle_id` the new
/// bundle's id (the original's id would link the copy to the submission).
pub fn anonymise(
    bundle: &Bundle,
    source: &[StixId],
    centre: &Identity,
    scrub: &[&str],
    bundle_id: StixId,
) -> Result<Anonymised, Error> {
    anonymise_with(bundle, source, centre, scrub, bundle_id, Options::default())
}

/// [`anonymise`] with [`Options`].
pub fn anonymise_with(
    bundle: &Bundle,
    source: &[StixId],
    centre: &Identity,
    scrub: &[&str],
    bundle_id: StixId,
    options: Options,
) -> Result<Anonymised, Error> {
    let scrubber = Scrubber::new(scrub);
    let source_ids: BTreeSet<&str> = source.iter().map(StixId::as_str).collect();
    let centre_id = centre.common.id.as_str();

    // 1. Observables that are themselves identifying, and what points at them.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for o in bundle.objects() {
        let value = match o {
            StixObject::Ipv4Addr(a) | StixObject::Ipv6Addr(a) => Some(a.value.as_str()),
            StixObject::DomainName(d) => Some(d.value.as_str()),
            StixObject::Url(u) => Some(u.value.as_str()),
            StixObject::Other(x) if x.common.object_type == "email-addr" => {
                x.extra.get("value").and_then(Value::as_str)
            }
            StixObject::Other(x) if x.common.object_type == "artifact" && !options.keep_binary => {
                let binary = x
                    .extra
                    .get("payload_bin")
                    .and_then(Value::as_str)
                    .is_some_and(|b| {
                        STANDARD
                            .decode(b)
                            .ok()
                            .and_then(|bytes| String::from_utf8(bytes).ok())
                            .is_none()
                    });
                if binary {
                    dropped.insert(o.id().to_string());
                }
                None
            }
            _ => None,
        };
        if value.is_some_and(|v| {
            scrubber.leaks(v).is_some() || scrubber.leaks(&v.replace("/32", "")).is_some()
        }) {
            dropped.insert(o.id().to_string());
        }
    }
    for o in bundle.objects() {
        let points_at_dropped = match o {
            StixObject::Relationship(r) => {
                dropped.contains(r.source_ref.as_str()) || dropped.contains(r.target_ref.as_str())
            }
            StixObject::Sighting(s) => dropped.contains(s.sighting_of_ref.as_str()),
            _ => false,
        };
        if points_at_dropped {
            dropped.insert(o.id().to_string());
        }
    }

    // 2. Rewrite every remaining object; the centre's identity takes the place of the
    //    first source identity.
    let centre_value = serde_json::to_value(centre).map_err(Error::Serialise)?;
    let mut out: Vec<Value> = Vec::with_capacity(bundle.objects().len());
    let mut centre_placed = bundle
        .objects()
        .iter()
        .any(|o| o.id().as_str() == centre_id);
    for o in bundle.objects() {
        let id = o.id().as_str();
        if source_ids.contains(id) {
            if !centre_placed {
                out.push(centre_value.clone());
                centre_placed = true;
            }
            continue;
        }
        if dropped.contains(id) {
            continue;
        }
        let mut v = o.to_value().map_err(Error::Serialise)?;
        scrub_artifact(&mut v, &scrubber);
        rewrite(&mut v, None, &source_ids, centre_id, &dropped, &scrubber);
        out.push(v);
    }
    let uses_centre = out.iter().any(|v| v.to_string().contains(centre_id));
    if uses_centre && !centre_placed {
        out.insert(0, centre_value);
    }

    // 3. Back to typed, checked objects.
    let objects = out
        .into_iter()
        .map(StixObject::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(
                Location {
                    index: None,
                    id: None,
                    property: String::new(),
                },
                format!("an anonymised object that still has valid properties ({e})"),
                None,
            )
        })?;
    let result = Bundle::new(bundle_id, objects)?;

    // 4. Search the copy for anything that should be gone: every value and property
    //    name, the attachments' text, and the whole serialised copy for the source's ids.
    let text = String::from_utf8(result.to_json()?).unwrap_or_default();
    let mut in_values = None;
    for o in result.objects() {
        let v = o.to_value().map_err(Error::Serialise)?;
        in_values = in_values.or_else(|| leak_in(&v, None, &scrubber));
    }
    let in_attachments = result.objects().iter().find_map(|o| {
        let v = o.to_value().ok()?;
        match artifact_text(&v)? {
            Ok(t) => scrubber.leaks(&t),
            Err(()) => None,
        }
    });
    let leak = in_values.or(in_attachments).or_else(|| {
        source_ids
            .iter()
            .find(|id| text.contains(**id))
            .map(|id| (*id).to_owned())
    });
    if let Some(what) = leak {
        return Err(Error::AnonymisationIncomplete {
            remaining: shorten_str(&what),
        });
    }
    Ok(Anonymised {
        bundle: result,
        dropped: dropped
            .into_iter()
            .filter_map(|d| StixId::parse(&d).ok())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_is_ascii_case_insensitive_and_utf8_safe() {
        assert_eq!(
            replace_word_ci("Call ACME power, acme Power!", "acme power", "X").as_deref(),
            Some("Call X, X!")
        );
        assert_eq!(
            replace_word_ci("東京電力の報告", "東京電力", "X").as_deref(),
            Some("Xの報告")
        );
        assert_eq!(replace_word_ci("nothing", "acme", "X"), None);
        assert_eq!(replace_word_ci("a", "", "X"), None);
    }

    // PP-12: a short registered name is matched as a word, so it is still caught in the
    // reporter's text however it is punctuated, but not inside other words; a Japanese
    // name has no word boundaries and is matched as a substring.
    #[test]
    fn names_match_as_words_and_japanese_names_as_substrings() {
        assert_eq!(
            scrub_text(
                "Den's SCADA at DEN-01 (den_scada, den.example): an incident, not the Dens",
                &["Den"]
            ),
            "[redacted]'s SCADA at [redacted]-01 ([redacted]_scada, [redacted].example): \
             an incident, not the Dens"
        );
        // Glued to digits or at a camel-case joint it is still the name; inside a word
        // of the same case it is not.
        assert_eq!(
            scrub_text(
                "hosts DEN01, 01den and DenSCADA; the KantoPowerVPN; Dense DENSE Golden",
                &["Den", "Kanto Power", "Power"]
            ),
            "hosts [redacted]01, 01[redacted] and [redacted]SCADA; the Kanto[redacted]VPN; \
             Dense DENSE Golden"
        );
        assert_eq!(
            scrub_text(
                "関東電力のDenが報告。関東電力株式会社",
                &["関東電力", "Den"]
            ),
            "[redacted]の[redacted]が報告。[redacted]株式会社"
        );
        assert_eq!(
            scrub_text("the report by mark, marked by rep", &["mark", "rep"]),
            "the report by [redacted], marked by [redacted]"
        );
    }

    fn object(v: Value) -> StixObject {
        StixObject::from_value(v).unwrap()
    }

    // PP-12: names that occur inside STIX structure (type names, ids, marking references,
    // property names) are no trace of the source, and do not withhold the copy; in text
    // they are still scrubbed.
    #[test]
    fn short_names_inside_stix_structure_do_not_withhold_the_copy() {
        let amber = mamori_core::Tlp::Amber.stix_id();
        let bundle = Bundle::new(
            StixId::from_random_bytes("bundle", [1; 16]).unwrap(),
            vec![
                object(serde_json::json!({
                    "type": "incident", "spec_version": "2.1",
                    "id": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                    "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
                    "name": "Den's SCADA incident",
                    "description": "DEN-01 beaconing, reported by mark (rep on call)",
                    "object_marking_refs": [amber],
                })),
                object(serde_json::json!({
                    "type": "report", "spec_version": "2.1",
                    "id": "report--9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
                    "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
                    "name": "Incident report", "published": "2026-11-24T01:00:00.000Z",
                    "report_types": ["threat-report"],
                    "object_refs": ["incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"],
                    "object_marking_refs": [amber],
                })),
            ],
        )
        .unwrap();
        let a = anonymise(
            &bundle,
            &[],
            &centre(),
            &["Den", "mark", "rep"],
            StixId::from_random_bytes("bundle", [2; 16]).unwrap(),
        )
        .unwrap();
        let incident = a.bundle.objects()[0].to_value().unwrap();
        assert_eq!(incident["name"], "[redacted]'s SCADA incident");
        assert_eq!(
            incident["description"],
            "[redacted]-01 beaconing, reported by [redacted] ([redacted] on call)"
        );
        assert_eq!(incident["object_marking_refs"], serde_json::json!([amber]));
        let report = a.bundle.objects()[1].to_value().unwrap();
        assert_eq!(report["name"], "Incident report");
        // A `type` below the object's own is text like any other: searched.
        let s = Scrubber::new(&["Den"]);
        let nested = serde_json::json!({"type": "incident", "x_site": {"type": "den"}});
        assert_eq!(leak_in(&nested, None, &s).as_deref(), Some("Den"));
        assert_eq!(
            leak_in(&serde_json::json!({"type": "incident"}), None, &s),
            None
        );
        assert_eq!(report["report_types"], serde_json::json!(["threat-report"]));
    }

    // PP-12: in free JSON (a stage's `detail`), property names are scrubbed like values;
    // names that become the same are numbered, so no value is lost.
    #[test]
    fn free_json_is_scrubbed_in_property_names_too() {
        let mut v = serde_json::json!({
            "kanto-power.example": "x",
            "Kanto Power": {"hosts": ["vpn.kanto-power.example"], "KANTO POWER": 1},
            "kanto power": 2,
            "[redacted]": 3,
            "kanto_power_site": "Den",
            "incident": {"ports": [443]},
        });
        scrub_json(&mut v, &["Kanto Power", "kanto-power.example", "Den"]);
        let text = v.to_string().to_ascii_lowercase();
        assert!(!text.contains("kanto"), "{text}");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{v}");
        assert!(v["incident"]["ports"].is_array(), "{v}");
        assert_eq!(v["[redacted]_site"], "[redacted]");
        let mut numbers: Vec<i64> = v
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_i64)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [2, 3], "{v}");
        // A scrubbed object keeps its contents under its new name.
        assert!(
            v.as_object()
                .unwrap()
                .values()
                .any(|x| x["hosts"] == serde_json::json!(["vpn.[redacted]"])),
            "{v}"
        );
    }

    #[test]
    fn addresses_in_scrubbed_ranges_are_redacted() {
        let s = Scrubber::new(&["198.51.100.0/24", "2001:db8:42::/48"]);
        assert_eq!(
            s.scrub(
                "seen from 198.51.100.23. and 203.0.113.9, 2001:db8:42::7",
                "X"
            )
            .as_deref(),
            Some("seen from X. and 203.0.113.9, X")
        );
        assert_eq!(s.scrub("hash deadbeef 10.0.0.1", "X"), None);
    }

    #[test]
    fn free_text_is_scrubbed_by_the_same_rules() {
        assert_eq!(
            scrub_text(
                "Kanto Power's gateway at 198.51.100.9 (kanto-power.example)",
                &["kanto power", "kanto-power.example", "198.51.100.0/24"]
            ),
            "[redacted]'s gateway at [redacted] ([redacted])"
        );
        assert_eq!(scrub_text("nothing to hide", &["acme"]), "nothing to hide");
    }

    // PP-12: a registered phone number is found however it is written; a domain also
    // covers its subdomains and the mailboxes at it.
    #[test]
    fn contacts_are_scrubbed_in_any_form_and_domains_with_their_subdomains() {
        let terms = ["+81-3-5555-0100", "kanto-power.example"];
        assert_eq!(
            scrub_text(
                "call 03 5555 0100, +81 (3) 5555-0100 or 0355550100; not 03-5555-0199. \
                 Mail soc@ops.KANTO-POWER.example or see https://vpn.kanto-power.example/x",
                &terms
            ),
            "call [redacted], [redacted] or [redacted]; not 03-5555-0199. \
             Mail soc@ops.[redacted] or see https://vpn.[redacted]/x"
        );
        let s = Scrubber::new(&terms);
        assert!(s.leaks("ring (03) 5555.0100").is_some());
        assert!(s.leaks("build 20260101 id 12345678").is_none());
        // Short digit strings and non-phone terms make no phone key.
        assert_eq!(phone_key("110"), None);
        assert_eq!(phone_key("soc@kanto.example"), None);
        assert_eq!(phone_key("+81-3-5555-0100").as_deref(), Some("55550100"));
    }

    fn centre() -> Identity {
        let v = serde_json::json!({
            "type": "identity", "spec_version": "2.1",
            "id": "identity--0f2a7e3c-2f4b-4d7a-9c1e-5b6d7e8f9a01",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "name": "Coordination Centre", "identity_class": "organization"
        });
        match StixObject::from_value(v).unwrap() {
            StixObject::Identity(i) => *i,
            other => panic!("{other:?}"),
        }
    }

    fn artifact(n: u8, payload: &[u8]) -> Value {
        serde_json::json!({
            "type": "artifact", "spec_version": "2.1",
            "id": format!("artifact--6f4e2c1a-3b5d-4e7f-8a9b-0c1d2e3f4a{n:02x}"),
            "mime_type": "text/plain",
            "payload_bin": STANDARD.encode(payload),
            "hashes": {"SHA-256": "0000000000000000000000000000000000000000000000000000000000000000"}
        })
    }

    fn relay(objects: Vec<Value>, options: Options) -> Anonymised {
        let objects = objects
            .into_iter()
            .map(|v| StixObject::from_value(v).unwrap())
            .collect();
        let bundle = Bundle::new(
            StixId::from_random_bytes("bundle", [1; 16]).unwrap(),
            objects,
        )
        .unwrap();
        anonymise_with(
            &bundle,
            &[],
            &centre(),
            &["Kanto Power", "kanto-power.example", "198.51.100.0/24"],
            StixId::from_random_bytes("bundle", [2; 16]).unwrap(),
            options,
        )
        .unwrap()
    }

    // PP-12, DESIGN invariant 6: a text attachment is scrubbed and re-encoded, its stale
    // hashes dropped; a binary one cannot be searched and is dropped unless kept.
    #[test]
    fn text_attachments_are_scrubbed_and_binary_ones_dropped() {
        let text = b"From: soc@ops.kanto-power.example\nKanto Power saw 198.51.100.7\n";
        let binary = [
            0x4d, 0x5a, 0x90, 0x00, 0xff, 0xfe, b'K', b'a', b'n', b't', b'o',
        ];
        let a = relay(
            vec![artifact(1, text), artifact(2, &binary)],
            Options::default(),
        );
        assert_eq!(a.dropped.len(), 1, "{:?}", a.dropped);
        assert!(a.dropped[0].as_str().ends_with("4a02"));
        let kept = a.bundle.objects()[0].to_value().unwrap();
        let decoded = STANDARD
            .decode(kept["payload_bin"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "From: soc@ops.[redacted]\n[redacted] saw [redacted]\n"
        );
        assert!(kept.get("hashes").is_none(), "{kept}");

        let kept = relay(
            vec![artifact(1, b"nothing to hide"), artifact(2, &binary)],
            Options { keep_binary: true },
        );
        assert!(kept.dropped.is_empty());
        assert_eq!(kept.bundle.objects().len(), 2);
        // Unchanged text keeps its hashes.
        assert!(kept.bundle.objects()[0].to_value().unwrap()["hashes"].is_object());
    }
}
