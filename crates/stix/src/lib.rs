//! STIX 2.1 and TAXII 2.1 for mamori: the format everything shared outward travels in.
//!
//! Reporters send incident reports as STIX bundles, the centre redistributes reports,
//! indicators and advisories as STIX under TLP 2.0 markings, and partners exchange them
//! over TAXII 2.1 (REQUIREMENTS PP-2 technical detail and context in one object graph,
//! PP-4 one voice interoperable with allied CERTs, PP-9 machine-to-machine in minutes,
//! PP-11 TLP 2.0 on every item, PP-12 the anonymous relay). This crate holds:
//!
//! - **the object model** ([`object`]): common properties and typed report, incident,
//!   indicator, vulnerability, identity, note, sighting, relationship, marking-definition,
//!   observed-data and the address / domain / URL / file SCOs; every other object type
//!   travels as [`StixObject::Other`]. Unknown properties are kept, so a partner's object
//!   round-trips to the same JSON values.
//! - **bundles** ([`parse_bundle`], [`parse_object`], [`Bundle::new`]): parsing bounded by
//!   the caller's [`Limits`] (bytes, objects, nesting) and the STIX 2.1 rules checked at
//!   the edge, each refusal naming the object index, the property and what was expected.
//! - **TLP markings** ([`marking`]): the official TLP 2.0 marking-definition objects
//!   ([`MarkingDefinition::official_tlp`]), TLP 1.0 ids mapped onto TLP 2.0, refusal of
//!   markings that only look like TLP, and an object's effective TLP ([`effective_tlp`]).
//! - **patterns** ([`pattern`]): the STIX patterning grammar, and the subset that becomes
//!   IOCs for the detectors (addresses, CIDR blocks, domains, URLs, file hashes).
//! - **TAXII 2.1 resources** ([`taxii`]): discovery, API root, collections, envelope,
//!   manifest, versions, status, error; the two media types.
//! - **the anonymous relay** ([`anonymise()`]): a copy that names the centre instead of the
//!   reporter and holds none of the reporter's names, domains, contacts or address ranges.
//!
//! # Architecture invariant
//!
//! Pure: no IO, no clock, no randomness, no async runtime, no HTTP, no SQL (STYLE principle
//! 2). Bytes or values in, values or a typed [`Error`] out; no input makes it panic (a
//! property test feeds it arbitrary and mutated bytes). **Unknown markings are refused once,
//! at the edge** (STYLE principle 5): a [`Bundle`] exists only after every object in it
//! passed the rules, so code holding one never meets a marking that merely resembles TLP.
//! Ids come from the caller's random bytes ([`StixId::from_random_bytes`]) or are derived
//! ([`StixId::deterministic`]); times from the caller.
//!
//! # API boundary
//!
//! Used by `mamori-share` (reports, advisories, the relay), `mamori-server` (the TAXII 2.1
//! endpoints and `POST /api/v1/reports` with a STIX body) and `mamori-sensor` (indicator
//! feeds into IOC matchers). It decides nothing about who may see what: it computes an
//! object's TLP, and `mamori_core::tlp::may_see` applies the rule. It stores nothing and
//! speaks no HTTP.
//!
//! # Why our own types
//!
//! The `stix2` crate (0.1) is young and would be the core of our data model; STIX objects
//! are plain JSON with a few dozen rules, so thin serde types plus a hand-written
//! validator keep us in control of error messages and of what is refused. The OASIS Python
//! tools serve as oracles in the tests: `stix2-validator` validates what we produce, and the
//! `stix2-patterns` test cases check the pattern parser.

pub mod anonymise;
mod bundle;
mod error;
mod id;
pub mod marking;
pub mod object;
pub mod pattern;
pub mod taxii;
mod validate;

pub use anonymise::{
    Anonymised, Options as AnonymiseOptions, anonymise, anonymise_with, scrub_json, scrub_text,
};
pub use bundle::{Bundle, Limits, check_object, parse_bundle, parse_object};
pub use error::{Error, Location};
pub use id::{STIX_SCO_NAMESPACE, StixId, StixTimestamp, is_valid_type_name};
pub use marking::{carry_tlp, effective_tlp, object_tlp, served_with_tlp};
pub use object::{MarkingDefinition, StixObject};
pub use pattern::{Ioc, Pattern, indicator_iocs};
