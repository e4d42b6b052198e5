//! Hostile cases: intake (filled in by the work on issue 16).
