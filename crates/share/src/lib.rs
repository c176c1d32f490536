//! Pillar I of mamori (issue 8): operators report to **one window** in one format — a
//! short flash report first, then staged follow-ups under a reporting regime — and what
//! they report is shown only to whom its TLP 2.0 marking and their exclusions allow
//! (REQUIREMENTS PP-7…PP-11, PP-15, PP-18, PP-22).
//!
//! - [`report`]: the flash report's minimal required set, follow-up stages, validation.
//! - [`regime`]: reporting regimes as data (`config/regimes/default.toml`), and the pure
//!   [`regime::status`] of a report's stages and of the centre's duties.
//! - [`view`]: **the one visibility function** for reports, [`view::visible`], on
//!   `mamori_core::tlp::may_see`; [`view::Visible`] is what output paths render.
//! - [`stix_in`]: a STIX 2.1 bundle (an incident or report object and its TLP marking)
//!   read as a flash report.
//! - [`stix_out`]: a report as the caller may see it, rendered as STIX 2.1 (the export).
//! - [`intake`]: submit (idempotently), add stages, acknowledge, get and list — inside the
//!   caller's store transaction.
//! - [`source`]: **the one decision on who sees a report's source** (PP-12): the reporter,
//!   the authorities it is routed to, or everyone if the reporter allowed it; for everyone
//!   else — the centre's analysts included — a sealed, opaque handle and text scrubbed of
//!   the reporter's registered profile.
//! - [`relay`]: the anonymised STIX 2.1 copy written into the TAXII `reports` collection
//!   when a report is accepted and when a stage arrives (DESIGN invariant 6).
//! - [`reveal`]: the two-person reveal of a sealed source, recorded in the ledger.
//!
//! **Architecture invariant:** every read of a report goes through [`view::reveal`]; no
//! function here returns a stored report to a caller any other way (DESIGN invariant 5),
//! and its source only where [`source::Sources::sees_source`] allows (invariant 6).
//! Bad input is refused before anything is written; a retried submission with the same
//! idempotency key stores nothing new.
//!
//! **API boundary:** used by `mamori-server` (the reports API) and `mamori` (the CLI's
//! types). Clocks are the caller's: every function that needs "now" takes it.

pub mod error;
pub mod intake;
pub mod regime;
pub mod relay;
pub mod report;
pub mod reveal;
pub mod source;
pub mod stix_in;
pub mod stix_out;
pub mod view;

pub use error::ShareError;
pub use regime::{Regime, Status};
pub use report::{Cause, FlashReport, Impact, Purpose, Rating, StageReport};
pub use view::{ReportAudience, ReportViewer, Visible, reveal, visible};
