//! mamori's vocabulary: the words every room shares.
//!
//! **Architecture invariant:** pure — no IO, no async runtime, no SQL, no clock reads
//! except through [`time::Clock`]. Everything here takes values and returns values.
//!
//! **API boundary:** typed ids ([`id`]), UTC time with JST display and an injectable
//! clock ([`time`]), TLP 2.0 and *the one* visibility rule ([`tlp`], DESIGN invariant 5,
//! PP-3, PP-11), the 15 critical-infrastructure sectors ([`sector`], PP-16), the actors as
//! organisation kinds and user roles ([`actor`]), and the error kinds that decide an
//! HTTP status ([`error`]), and the [`finding::Finding`] a sensor reports (CI-11).

pub mod actor;
pub mod entry;
pub mod error;
pub mod finding;
pub mod id;
mod named;
pub mod sector;
pub mod time;
pub mod tlp;

#[cfg(feature = "testdata")]
pub mod testdata;

pub use actor::{Clearance, OrgKind, Role};
pub use error::{ErrorBody, ErrorDetail, ErrorKind};
pub use id::{OrgId, TokenId, UserId};
pub use sector::Sector;
pub use time::{Clock, Timestamp};
pub use tlp::Tlp;
