//! mamori's vocabulary. Pure: no IO, no async runtime, no SQL.
